"""The request and response objects the routes see, and query/body parameter parsing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError

WRITE_METHODS = {"POST", "PUT", "DELETE"}


class Response:
    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict | None = None,
        content_type: str = "application/json;charset=UTF-8",
    ):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type


class Request:
    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers, raw: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw = raw
        self.user: dict | None = None
        self.version = "2"
        self.params: dict[str, str] = {}

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def qint(self, name: str, default: int) -> int:
        raw = self.q(name)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(
                400, [f"The value '{raw}' is invalid for the '{name}' parameter."]
            ) from None

    def qlist(self, name: str) -> list[str] | None:
        vals = self.query.get(name)
        if not vals:
            return None
        return [x for v in vals for x in v.split(",")]

    def json(self) -> Any:
        if not self.raw:
            return None
        try:
            return json.loads(self.raw)
        except ValueError:
            raise ApiError(400, ["Unexpected character: was expecting a JSON value"]) from None


Route = tuple[str, re.Pattern, Callable[[Request], Response]]


def paged(req: Request, member: str, items: list, cap: int) -> Response:
    """A `startAt`/`maxResults` page of `items`; Jira caps `maxResults` per endpoint (and
    says so in the answer's `maxResults`)."""
    start = req.qint("startAt", 0)
    size = max(min(req.qint("maxResults", cap), cap), 0)
    return Response(
        200,
        {
            "startAt": start,
            "maxResults": size,
            "total": len(items),
            member: items[start : start + size],
        },
    )


def int_param(value: Any, default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(
            400, [f"The value '{value}' is invalid for the '{name}' parameter."]
        ) from None
