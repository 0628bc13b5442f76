"""Attachments on issues: upload (one or more files), metadata, content and deletion.

Each added or removed file is a changelog item (field `Attachment`: `to`/`toString` the new
attachment's id and file name; `from`/`fromString` on removal) of a `jira:issue_updated`
event; Cloud also sends `attachment_created` / `attachment_deleted`. Contents are kept in
memory (`self.blobs`), not in the saved state file.
"""

from __future__ import annotations

import mimetypes

from .clock import now_ms
from .errors import ApiError


class AttachmentOpsMixin:
    """Attachments (mixed into :class:`jirasim.store.Store`)."""

    def add_attachments(
        self, *, actor: dict, key: str, files: list[tuple[str, bytes, str | None]]
    ) -> tuple[dict, list[dict]]:
        """`files`: (file name, content, content type) per multipart `file` part."""
        with self.lock:
            issue = self.get_issue(key)
            if not files:
                raise ApiError(400, ["No attachments were provided."])
            limit = self.options.attachment_max_bytes
            for filename, content, _ctype in files:
                if limit and len(content) > limit:
                    raise ApiError(
                        413,
                        [
                            f"The file '{filename}' is too large to attach: {len(content)} "
                            f"bytes, the limit is {limit} bytes."
                        ],
                    )
            self.seq.setdefault("attachment", 10000)
            ts = now_ms()
            added, items = [], []
            for filename, content, ctype in files:
                aid = self._next("attachment")
                guessed = mimetypes.guess_type(filename)[0]
                att = {
                    "id": aid,
                    "filename": filename,
                    "author": actor["accountId"],
                    "created": ts,
                    "size": len(content),
                    "mimeType": (ctype if ctype and ctype != "application/octet-stream" else None)
                    or guessed
                    or "application/octet-stream",
                }
                self.blobs[aid] = content
                issue.setdefault("attachments", []).append(att)
                added.append(att)
                items.append(self._item("attachment", None, None, aid, filename))
            for item in items:
                item["field"] = "Attachment"
            issue["updated"] = ts
            history = self._record(issue, actor, items, ts)
            if self.cloud:
                for att in added:
                    self._emit("attachment_created", None, actor, issue, attachment=att, ts=ts)
            self._emit("jira:issue_updated", "issue_updated", actor, issue, history, ts=ts)
            return issue, added

    def get_attachment(self, aid: str) -> tuple[dict, dict]:
        for issue in self.issues.values():
            for att in issue.get("attachments") or ():
                if att["id"] == str(aid):
                    return issue, att
        raise ApiError(404, [f"The attachment with id '{aid}' does not exist"])

    def attachment_content(self, aid: str) -> tuple[dict, bytes]:
        with self.lock:
            _issue, att = self.get_attachment(aid)
            return att, self.blobs.get(att["id"], b"")

    def delete_attachment(self, *, actor: dict, aid: str) -> None:
        with self.lock:
            issue, att = self.get_attachment(aid)
            issue["attachments"].remove(att)
            self.blobs.pop(att["id"], None)
            ts = now_ms()
            issue["updated"] = ts
            item = self._item("attachment", att["id"], att["filename"], None, None)
            item["field"] = "Attachment"
            history = self._record(issue, actor, [item], ts)
            if self.cloud:
                self._emit("attachment_deleted", None, actor, issue, attachment=att, ts=ts)
            self._emit("jira:issue_updated", "issue_updated", actor, issue, history, ts=ts)
