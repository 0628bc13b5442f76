"""REST search routes and their paging: Cloud ``search/jql`` (``nextPageToken``) and
Data Center ``search`` (``startAt``/``total``)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from . import jql as jqlmod
from .errors import ApiError
from .render import select_fields
from .request import Request, Response, int_param


class SearchRoutes:
    """JQL search over REST (mixed into :class:`jirasim.app.App`)."""

    def _search_params(self, req: Request) -> dict:
        if req.method == "POST":
            body = req.json() or {}
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid search request"])
            fields = body.get("fields")
            if isinstance(fields, str):
                fields = fields.split(",")
            expand = body.get("expand")
            if isinstance(expand, list):
                expand = ",".join(expand)
            props = body.get("properties")
            return {
                "reconcileIssues": body.get("reconcileIssues"),
                "jql": body.get("jql"),
                "fields": fields,
                "expand": expand,
                "properties": props,
                "maxResults": body.get("maxResults"),
                "startAt": body.get("startAt"),
                "nextPageToken": body.get("nextPageToken"),
            }
        return {
            "reconcileIssues": req.qlist("reconcileIssues"),
            "jql": req.q("jql"),
            "fields": req.qlist("fields"),
            "expand": req.q("expand"),
            "properties": req.qlist("properties"),
            "maxResults": req.q("maxResults"),
            "startAt": req.q("startAt"),
            "nextPageToken": req.q("nextPageToken"),
        }

    def _render_hits(self, hits: list[dict], p: dict, version: str, default_fields) -> list:
        s = self.store
        fields = p["fields"] if p["fields"] is not None else default_fields
        out = []
        for issue in hits:
            if fields == ["id"]:
                out.append({"id": issue["id"]})
                continue
            j = s.issue_json(issue, version, expand=p["expand"], properties=p["properties"])
            wanted = list(fields)
            if not any(w in ("*all",) or w == "comment" for w in wanted):
                wanted += ["-comment", "-worklog"]
            j["fields"] = select_fields(j["fields"], wanted)
            out.append(j)
        return out

    def search_jql(self, req: Request) -> Response:
        s = self.store
        if not s.cloud:
            return Response(404, {"errorMessages": ["null for uri: " + req.path], "errors": {}})
        p = self._search_params(req)
        try:
            q = jqlmod.parse(p["jql"])
        except jqlmod.JqlError as e:
            raise ApiError(400, [str(e)]) from None
        if q.where is None:
            raise ApiError(
                400,
                [
                    "Unbounded JQL queries are not allowed here. Please add a search "
                    "restriction to your query."
                ],
            )
        size = int_param(p["maxResults"], 50, "maxResults")
        size = max(1, min(size, 5000 if p["fields"] in (None, ["id"]) else 100))
        offset = 0
        digest = hashlib.sha256((p["jql"] or "").encode()).hexdigest()[:10]
        if p["nextPageToken"]:
            try:
                tok = json.loads(base64.urlsafe_b64decode(p["nextPageToken"].encode()))
                offset = int(tok["o"])
                if tok["q"] != digest:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    400, ["The provided next page token is invalid or expired."]
                ) from None
        reconcile = _reconcile_ids(p["reconcileIssues"])
        with s.lock:
            hits = s.search(
                p["jql"],
                req.user,
                lag_ms=self.faults.get("search_lag_ms"),
                reconcile=reconcile,
            )
            page = hits[offset : offset + size]
            issues = self._render_hits(page, p, req.version, ["id"])
        body: dict[str, Any] = {"issues": issues}
        is_last = offset + size >= len(hits)
        if not is_last:
            tok = json.dumps({"o": offset + size, "q": digest}).encode()
            body["nextPageToken"] = base64.urlsafe_b64encode(tok).decode()
        body["isLast"] = is_last
        return Response(200, body)

    def search_dc(self, req: Request) -> Response:
        # Data Center has no reconcileIssues: a node indexes an issue in the request that
        # changed it, so its own searches are consistent (the lag fault still applies).
        s = self.store
        if s.cloud:
            return Response(
                410,
                {
                    "errorMessages": [
                        "The requested API has been removed. Please migrate to the "
                        "/rest/api/3/search/jql API. A full migration guideline is available "
                        "at https://developer.atlassian.com/changelog/#CHANGE-2046"
                    ],
                    "errors": {},
                },
            )
        p = self._search_params(req)
        start = max(0, int_param(p["startAt"], 0, "startAt"))
        size = max(0, min(int_param(p["maxResults"], 50, "maxResults"), 1000))
        with s.lock:
            hits = s.search(p["jql"], req.user, lag_ms=self.faults.get("search_lag_ms"))
            issues = self._render_hits(hits[start : start + size], p, "2", ["*navigable"])
        return Response(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(hits),
                "issues": issues,
            },
        )


# Cloud's search-and-reconcile: at most this many issue ids per request.
MAX_RECONCILE = 50


def _reconcile_ids(raw: Any) -> set[str]:
    """``reconcileIssues``: issue ids (numbers) whose current state the search must reflect.

    Jira Cloud: "consistency is ensured only for the specified issues", at most 50
    (developer.atlassian.com/cloud/jira/platform/search-and-reconcile).
    """
    if raw in (None, "", []):
        return set()
    if not isinstance(raw, list):
        raw = [raw]
    ids: set[str] = set()
    for value in raw:
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            raise ApiError(400, [f"Invalid issue id in reconcileIssues: '{value}'."])
        ids.add(str(int(text)))
    if len(ids) > MAX_RECONCILE:
        raise ApiError(400, [f"The maximum number of issues to reconcile is {MAX_RECONCILE}."])
    return ids
