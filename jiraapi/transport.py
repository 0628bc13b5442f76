"""A requests transport that enforces the URL policy when connecting (DNS can change).

Two checks, both cheap on the hot path:
- before a request is sent: scheme, host and every address the host resolves to
  (`UrlPolicy.check`), remembered per origin for `cache_seconds`, so a warm path costs a
  dictionary look-up;
- when a new connection is opened (rare with keep-alive): the address actually connected to,
  before a byte is sent. This closes the gap between our look-up and urllib3's own one (DNS
  rebinding): whatever the name resolved to, we talk only to allowed addresses.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import JiraTransientError, JiraUnsafeUrl
from .urlpolicy import UnresolvableHost, UnsafeUrl, UrlPolicy, origin


def _guarded_pool_classes(policy: UrlPolicy) -> dict[str, type]:
    def check_peer(conn: HTTPConnection, sock: Any) -> None:
        try:
            address = sock.getpeername()[0]
            scheme = "https" if isinstance(conn, HTTPSConnection) else "http"
            policy.check_address(f"{scheme}://{conn.host}:{conn.port}", conn.host, address)
        except UnsafeUrl as exc:
            sock.close()
            raise JiraUnsafeUrl(f"refused to connect: {exc}") from None

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            check_peer(self, sock)
            return sock

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            check_peer(self, sock)
            return sock

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


class GuardedAdapter(HTTPAdapter):
    """Mount on a session for `http://` and `https://`; refusals raise `JiraUnsafeUrl`."""

    def __init__(self, policy: UrlPolicy, *, cache_seconds: float = 30.0, **kwargs: Any) -> None:
        self.policy = policy
        self.cache_seconds = cache_seconds
        self._checked: dict[tuple, float] = {}
        self._lock = threading.Lock()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _guarded_pool_classes(self.policy)

    def check(self, url: str) -> None:
        key = origin(url)
        now = time.monotonic()
        if self._checked.get(key, 0.0) > now:
            return
        try:
            self.policy.check(url, require_resolution=True)
        except UnresolvableHost as exc:
            raise JiraTransientError(str(exc)) from None  # like any failed look-up: retry
        except UnsafeUrl as exc:
            with self._lock:
                self._checked.pop(key, None)
            raise JiraUnsafeUrl(f"refused to connect: {exc}") from None
        with self._lock:
            self._checked[key] = now + self.cache_seconds

    def send(self, request, *args: Any, **kwargs: Any):
        self.check(request.url)
        return super().send(request, *args, **kwargs)


def environment_read_once(session: requests.Session, base_url: str) -> requests.Session:
    """Read what requests takes from the environment (proxies for `base_url`, honouring
    NO_PROXY; the CA bundle) once, for a session that only ever calls one site.

    With `trust_env` on, requests reads every proxy variable of the environment again on
    each call (`merge_environment_settings`): about 2 ms of CPU a call on a machine with a
    large environment, more than the rest of a Jira call's own cost. The session's own
    settings win over what is read here, as they would over the environment.
    """
    for scheme, proxy in get_environ_proxies(base_url).items():
        if scheme != "no":
            session.proxies.setdefault(scheme, proxy)
    if session.verify is True:
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
    session.trust_env = False
    return session
