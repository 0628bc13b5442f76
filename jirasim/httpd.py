"""HTTP plumbing: the stdlib request handler and threading server around :class:`App`."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .request import Response

if TYPE_CHECKING:
    from .app import App


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "jirasim"
    wbufsize = 1 << 16  # headers and body leave in one write (no delayed-ACK stalls)
    app: App

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if os.environ.get("JIRASIM_ACCESS_LOG"):
            super().log_message(format, *args)

    def _do(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            resp, lost = self.server.app.handle(self.command, self.path, self.headers, raw)
        except Exception as e:  # pragma: no cover - a bug in the simulator
            resp, lost = (
                Response(500, {"errorMessages": [f"jirasim bug: {e!r}"], "errors": {}}),
                False,
            )
        if lost:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if resp.body is None:
            payload = b""
        elif isinstance(resp.body, bytes):
            payload = resp.body
        elif isinstance(resp.body, str):
            payload = resp.body.encode()
        else:
            payload = json.dumps(resp.body).encode()
        self.send_response(resp.status)
        if payload or resp.status not in (204,):
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-AREQUESTID", uuid.uuid4().hex[:12])
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _do


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, app: App):
        self.app = app
        super().__init__(addr, handler)
