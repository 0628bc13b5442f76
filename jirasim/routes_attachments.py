"""REST routes of attachments: upload to an issue, metadata, content, deletion.

Upload is `multipart/form-data` with one or more parts named `file`; without the header
`X-Atlassian-Token: no-check` Jira refuses it (403, XSRF check failed). The answer is a JSON
list of the attachments added. Content is served at Cloud's `/rest/api/{2,3}/attachment/
content/{id}` and Data Center's `/secure/attachment/{id}/{filename}`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import ApiError
from .request import Request, Response

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(r'\bname="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(r'\bfilename="([^"]*)"', re.IGNORECASE)
_FILENAME_STAR = re.compile(r"\bfilename\*=(?:UTF-8|utf-8)''([^;]+)")


def multipart_files(content_type: str, raw: bytes) -> list[tuple[str, bytes, str | None]]:
    """The parts named `file` of a multipart body: (file name, content, content type)."""
    m = _BOUNDARY.search(content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or not m:
        raise ApiError(415, ["Unsupported Media Type: multipart/form-data expected"])
    delimiter = b"--" + m.group(1).encode()
    files = []
    for chunk in raw.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _NAME.search(disposition)
        if not name or name.group(1) != "file":
            continue
        star = _FILENAME_STAR.search(disposition)
        plain = _FILENAME.search(disposition)
        filename = unquote(star.group(1)) if star else (plain.group(1) if plain else "")
        if body.endswith(b"\r\n"):
            body = body[:-2]
        files.append((filename or "attachment", body, headers.get("content-type")))
    return files


class AttachmentRoutes:
    """Attachment resources (mixed into :class:`jirasim.app.App`)."""

    def attachments_add(self, req: Request) -> Response:
        s = self.store
        if (req.headers.get("X-Atlassian-Token") or "").lower() != "no-check":
            return Response(403, "XSRF check failed", content_type="text/plain;charset=UTF-8")
        with s.lock:
            s.get_issue(req.params["key"])  # 404 before the body is looked at
        files = multipart_files(req.headers.get("Content-Type") or "", req.raw)
        _issue, added = s.add_attachments(actor=req.user, key=req.params["key"], files=files)
        with s.lock:
            return Response(200, [s.attachment_json(a) for a in added])

    def attachment_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            _issue, att = s.get_attachment(req.params["aid"])
            return Response(200, s.attachment_json(att))

    def attachment_delete(self, req: Request) -> Response:
        self.store.delete_attachment(actor=req.user, aid=req.params["aid"])
        return Response(204)

    def attachment_content(self, req: Request) -> Response:
        s = self.store
        if not s.cloud and req.path.startswith("/rest/"):
            raise ApiError(404, ["null for uri: " + req.path])
        att, content = s.attachment_content(req.params["aid"])
        return Response(
            200,
            content,
            {"Content-Disposition": f'attachment; filename="{att["filename"]}"'},
            content_type=att["mimeType"],
        )
