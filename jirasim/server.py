"""The in-process simulator :class:`JiraSim` (HTTP server thread, state file, helpers).

The request pipeline is :class:`jirasim.app.App`; the names below stay importable from
here for existing callers.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from typing import Any

from . import adf
from .app import App
from .faults import Faults
from .httpd import Handler, SimServer
from .model import CLOUD
from .options import Options
from .request import WRITE_METHODS, Request, Response
from .store import Store
from .webhooks import Dispatcher

__all__ = ["WRITE_METHODS", "App", "Handler", "JiraSim", "Request", "Response"]


def _parse_pairs(values, sep: str = ":") -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        if isinstance(v, tuple | list):
            out.append((str(v[0]), str(v[1])))
        else:
            a, _, b = str(v).partition(sep)
            out.append((a, b))
    return out


class JiraSim:
    """One simulated Jira site, started in-process on a free port (or a chosen one).

    >>> with JiraSim(flavor="cloud", projects=["ENG:Engineering"]) as sim:
    ...     requests.get(sim.base_url + "/rest/api/3/myself", auth=sim.auth)
    """

    def __init__(
        self,
        flavor: str = CLOUD,
        projects: list | None = None,
        users: list | None = None,
        *,
        host: str = "127.0.0.1",
        public_url: str | None = None,
        state_file: str | None = None,
        webhook_retry_base: float = 1.0,
        webhook_max_retries: int = 5,
        webhook_timeout: float = 5.0,
        webhook_workers: int = 1,
        options: dict[str, Any] | None = None,
    ):
        projs = []
        for key, name in _parse_pairs(projects or ["TEST:Test Project"]):
            projs.append((key.upper(), name or key.title()))
        self.users = _parse_pairs(users) or [("admin@example.com", "secret-token")]
        self.flavor = flavor
        self.host = host
        self.public_url = public_url.rstrip("/") if public_url else None
        self.state_file = state_file
        self.options = Options(options)
        self.store = Store(flavor=flavor, projects=projs, users=self.users, options=self.options)
        self.faults = Faults()
        self.dispatcher = Dispatcher(
            self.store,
            self.faults,
            retry_base=webhook_retry_base,
            max_retries=webhook_max_retries,
            timeout=webhook_timeout,
            workers=webhook_workers,
        )
        self.app = App(self.store, self.dispatcher, self.faults)
        if state_file:
            self.app.save_hook = lambda: self.save_state(state_file)
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        if state_file and os.path.exists(state_file):
            self.load_state(state_file)

    @property
    def auth(self) -> tuple[str, str]:
        """(email, token) of the admin user, for ``requests`` / ``JIRA(basic_auth=...)``."""
        return self.users[0]

    @property
    def token(self) -> str:
        return self.users[0][1]

    @property
    def email(self) -> str:
        return self.users[0][0]

    def start(self, port: int = 0) -> JiraSim:
        self._server = SimServer((self.host, port), Handler, self.app)
        self.port = self._server.server_address[1]
        self.base_url = self.public_url or f"http://{self.host}:{self.port}"
        self.store.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name="jirasim-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self, port: int) -> None:
        self.start(port)
        assert self._thread is not None
        self._thread.join()

    def save_state(self, path: str) -> None:
        """Issues, users, projects and registered webhooks, as JSON."""
        data = self.store.dump()
        with self.dispatcher.lock:
            data["webhooks"] = [dict(w) for w in self.dispatcher.webhooks.values()]
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)

    def load_state(self, path: str) -> None:
        with open(path) as fh:
            data = json.load(fh)
        self.store.load(data)
        with self.dispatcher.lock:
            for w in data.get("webhooks", []):
                self.dispatcher.webhooks[w["id"]] = w
            top = max(self.dispatcher.webhooks, default=0)
            self.dispatcher._wh_seq = itertools.count(top + 1)

    def stop(self) -> None:
        if self.state_file:
            self.save_state(self.state_file)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.dispatcher.stop()

    def __enter__(self) -> JiraSim:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ conveniences
    def register_webhook(
        self,
        url: str,
        events: list[str] | None = None,
        jql: str = "",
        secret: str | None = None,
        name: str = "test hook",
        exclude_body: bool = False,
    ) -> int:
        admin = self.store.find_user(self.users[0][0])
        body = {
            "name": name,
            "url": url,
            "events": events
            or [
                "jira:issue_created",
                "jira:issue_updated",
                "jira:issue_deleted",
                "comment_created",
                "comment_updated",
                "comment_deleted",
            ],
            "filters": {"issue-related-events-section": jql},
            "excludeBody": exclude_body,
        }
        if secret:
            body["secret"] = secret
        return self.dispatcher.register(body, admin)["id"]

    def user(self, email: str) -> dict:
        """The simulated user (accountId, name, key, email, displayName, token)."""
        u = self.store.find_user(email)
        if u is None:
            raise KeyError(email)
        return dict(u)

    def deliveries(self) -> list[dict]:
        return self.dispatcher.log()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self.dispatcher.wait_idle(timeout)

    def set_faults(self, **settings: Any) -> dict:
        return self.faults.update(settings)

    def set_options(self, **options: Any) -> dict:
        """Change how Jira-like the site is (see :mod:`jirasim.options`)."""
        return self.options.update(options)

    def move_issue(self, key: str, project: str, as_user: str | None = None) -> str:
        """Move an issue to another project (see :mod:`jirasim.moves`); its new key."""
        actor = self.store.find_user(as_user or self.users[0][0])
        return self.store.move_issue(actor=actor, key=key, project=project)["key"]

    def clear_faults(self) -> None:
        self.faults.clear()

    def calls(self) -> list[dict]:
        with self.app.calls_lock:
            return list(self.app.calls)

    def reset(self, keep_webhooks: bool = False) -> None:
        self.app.reset(keep_webhooks=keep_webhooks)

    def adf(self, text: str) -> dict:
        return adf.wiki_to_adf(text)
