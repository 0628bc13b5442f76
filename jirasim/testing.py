"""Helpers for tests of code that talks to Jira: plain functions and context managers that any
conftest can wrap in fixtures (no pytest import here).

    from jirasim.testing import running_sim, WebhookReceiver

    @pytest.fixture
    def jira_cloud():
        with running_sim(flavor="cloud", webhook_retry_base=0.05) as sim:
            yield sim
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .server import JiraSim


@contextlib.contextmanager
def running_sim(flavor: str = "cloud", **kwargs: Any) -> Iterator[JiraSim]:
    """An in-process simulator on a free port, stopped afterwards."""
    port = kwargs.pop("port", 0)
    sim = JiraSim(flavor=flavor, **kwargs)
    sim.start(port=port)
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def sim_process(
    flavor: str = "cloud",
    port: int = 0,
    args: list[str] | None = None,
    timeout: float = 10.0,
) -> Iterator[str]:
    """``python -m jirasim`` as a subprocess; yields its base URL once it is listening."""
    cmd = [sys.executable, "-m", "jirasim", "--port", str(port), "--flavor", flavor, *(args or [])]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + timeout
        base_url = None
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("jirasim listening on "):
                base_url = line.split()[3]
                break
        if base_url is None:
            raise RuntimeError(f"jirasim did not start: {proc.poll()}")
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


class WebhookReceiver:
    """A tiny HTTP server that records every request and answers from a script.

    ``responses`` is a list of status codes (or ``"hang"`` to sleep past the sender's timeout)
    used in order; once exhausted, ``default_status`` is answered.
    """

    def __init__(self, default_status: int = 200) -> None:
        self.requests: list[dict] = []
        self.responses: list[int | str] = []
        self.default_status = default_status
        self.hang_seconds = 2.0
        self.cond = threading.Condition()
        receiver = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    action = receiver.responses.pop(0) if receiver.responses else None
                if action == "hang":
                    time.sleep(receiver.hang_seconds)
                    action = receiver.default_status
                status = int(action or receiver.default_status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                rec = {
                    "path": self.path,
                    "headers": {k: v for k, v in self.headers.items()},
                    "raw": raw,
                    "json": json.loads(raw) if raw else None,
                    "status": status,
                    "at": time.monotonic(),
                }
                with receiver.cond:
                    receiver.requests.append(rec)
                    receiver.cond.notify_all()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, n: int, timeout: float = 5.0, **match: Any) -> list[dict]:
        """Wait until ``n`` requests whose JSON has the given top-level values arrived."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self.matching(**match)
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {n} webhook(s) matching {match}, got {len(got)}: "
                        + ", ".join(
                            f"{(r['json'] or {}).get('webhookEvent')}/"
                            f"{(r['json'] or {}).get('issue_event_type_name')}"
                            for r in self.requests
                        )
                    )
                self.cond.wait(left)

    def matching(self, **match: Any) -> list[dict]:
        return [
            r for r in self.requests if all((r["json"] or {}).get(k) == v for k, v in match.items())
        ]

    def clear(self) -> None:
        with self.cond:
            self.requests.clear()
