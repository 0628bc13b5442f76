"""Comment operations on issues: add, find, edit, delete, each emitted as two events."""

from __future__ import annotations

from typing import Any

from .clock import now_ms
from .errors import ApiError

# The comment property Jira Service Management keeps internal comments by
# (`{"internal": true}`); Jira shows it as `jsdPublic: false` on the comment.
SD_PUBLIC_PROPERTY = "sd.public.comment"


def comment_visibility(raw: Any) -> dict | None:
    """A comment's `visibility` as Jira takes it: `{"type": "role"|"group", "value": ...}`
    (Cloud also takes a group's `identifier`); absent or null means visible to all."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("role", "group"):
        raise ApiError(400, errors={"commentLevel": "Invalid comment visibility."})
    value = raw.get("value") or raw.get("identifier")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, errors={"commentLevel": "Invalid comment visibility."})
    return {"type": raw["type"], "value": value}


def comment_internal(properties: Any) -> bool | None:
    """`internal` of an `sd.public.comment` property among `properties`, if one is given."""
    for prop in properties if isinstance(properties, list) else ():
        if isinstance(prop, dict) and prop.get("key") == SD_PUBLIC_PROPERTY:
            value = prop.get("value")
            return bool(isinstance(value, dict) and value.get("internal"))
    return None


class CommentOpsMixin:
    """Comments (mixed into :class:`jirasim.store.Store`); bodies parse in ``ParseMixin``."""

    def _add_comment(
        self, actor: dict, issue: dict, body: Any, version: str, spec: dict | None = None
    ) -> dict:
        """`spec`: the rest of the comment object given (`visibility`, `properties`)."""
        spec = spec or {}
        text = self._comment_body(body, version)
        visibility = comment_visibility(spec.get("visibility"))
        internal = comment_internal(spec.get("properties"))
        ts = now_ms()
        c = {
            "id": self._next("comment"),
            "author": actor["accountId"],
            "updateAuthor": actor["accountId"],
            "body": text,
            "created": ts,
            "updated": ts,
            "visibility": visibility,
            "internal": internal,
            "adf": self.kept_adf(body, version),
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
            c = self._add_comment(actor, issue, body.get("body"), version, body)
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
            if "visibility" in body:  # as in Jira: absent keeps it, null clears it
                c["visibility"] = comment_visibility(body["visibility"])
            internal = comment_internal(body.get("properties"))
            if internal is not None:
                c["internal"] = internal
            ts = now_ms()
            c["body"] = text
            c["adf"] = self.kept_adf(body.get("body"), version)
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
