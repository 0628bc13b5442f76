"""The one exception the simulator answers with: Jira's error shape and an HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    """An answer in Jira's error shape: ``{"errorMessages": [...], "errors": {...}}``."""

    def __init__(self, status: int, messages: list[str] | None = None, errors: dict | None = None):
        super().__init__(f"{status} {messages} {errors}")
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}

    def body(self) -> dict:
        return {"errorMessages": self.messages, "errors": self.errors}
