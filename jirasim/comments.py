"""Comment operations on issues: add, find, edit, delete, each emitted as two events."""

from __future__ import annotations

from typing import Any

from .clock import now_ms
from .errors import ApiError


class CommentOpsMixin:
    """Comments (mixed into :class:`jirasim.store.Store`); bodies parse in ``ParseMixin``."""

    def _add_comment(self, actor: dict, issue: dict, body: Any, version: str) -> dict:
        text = self._comment_body(body, version)
        ts = now_ms()
        c = {
            "id": self._next("comment"),
            "author": actor["accountId"],
            "updateAuthor": actor["accountId"],
            "body": text,
            "created": ts,
            "updated": ts,
        }
        issue["comments"].append(c)
        issue["updated"] = ts
        self._emit("comment_created", None, actor, issue, comment=c, ts=ts)
        self._emit("jira:issue_updated", "issue_commented", actor, issue, comment=c, ts=ts)
        return c

    def add_comment(self, *, actor: dict, key: str, body: dict, version: str) -> tuple[dict, dict]:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            c = self._add_comment(actor, issue, body.get("body"), version)
            return issue, c

    def get_comment(self, key: str, cid: str) -> tuple[dict, dict]:
        issue = self.get_issue(key)
        for c in issue["comments"]:
            if c["id"] == str(cid):
                return issue, c
        raise ApiError(404, [f"Can not find a comment for the id: {cid}."])

    def edit_comment(
        self, *, actor: dict, key: str, cid: str, body: dict, version: str
    ) -> tuple[dict, dict]:
        with self.lock:
            issue, c = self.get_comment(key, cid)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            text = self._comment_body(body.get("body"), version)
            ts = now_ms()
            c["body"] = text
            c["updateAuthor"] = actor["accountId"]
            c["updated"] = ts
            issue["updated"] = ts
            self._emit("comment_updated", None, actor, issue, comment=c, ts=ts)
            self._emit("jira:issue_updated", "issue_comment_edited", actor, issue, comment=c, ts=ts)
            return issue, c

    def delete_comment(self, *, actor: dict, key: str, cid: str) -> None:
        with self.lock:
            issue, c = self.get_comment(key, cid)
            issue["comments"].remove(c)
            ts = now_ms()
            issue["updated"] = ts
            self._emit("comment_deleted", None, actor, issue, comment=c, ts=ts)
            self._emit(
                "jira:issue_updated", "issue_comment_deleted", actor, issue, comment=c, ts=ts
            )
