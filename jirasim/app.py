"""The simulator's request pipeline without sockets: routing table, dispatch, auth, the
call log and reset. Route handlers live in the ``routes_*`` mixins."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .clock import fmt_ts
from .errors import ApiError
from .fault_gate import FaultGate
from .faults import Faults
from .html_pages import HtmlPages
from .request import Request, Response, Route
from .routes_attachments import AttachmentRoutes
from .routes_comments import CommentRoutes
from .routes_control import ControlRoutes
from .routes_issues import IssueRoutes
from .routes_meta import MetaRoutes
from .routes_search import SearchRoutes
from .routes_webhooks import WebhookAdminRoutes
from .routes_worklogs import WorklogRoutes
from .store import Store
from .webhooks import Dispatcher

_UNAUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


class App(
    MetaRoutes,
    IssueRoutes,
    CommentRoutes,
    WorklogRoutes,
    AttachmentRoutes,
    SearchRoutes,
    WebhookAdminRoutes,
    ControlRoutes,
    HtmlPages,
    FaultGate,
):
    """Everything except the socket: usable by the HTTP handler and by tests directly."""

    def __init__(self, store: Store, dispatcher: Dispatcher, faults: Faults):
        self.store = store
        self.dispatcher = dispatcher
        self.faults = faults
        self.calls: list[dict] = []
        self.calls_lock = threading.Lock()
        self._call_seq = 0
        self.save_hook: Callable[[], None] | None = None
        self.routes: list[Route] = []
        self._build_routes()

    # ------------------------------------------------------------------ routing table
    def route(self, method: str, pattern: str, fn: Callable[[Request], Response]) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self.routes.append((method, regex, fn))

    def _build_routes(self) -> None:
        api = r"/rest/api/(?P<v>[23]|latest)"
        r = self.route
        r("GET", api + "/serverInfo", self.server_info)
        r("GET", api + "/myself", self.myself)
        r("GET", api + "/field", self.fields)
        r("GET", api + "/project", self.projects)
        r("GET", api + "/project/search", self.project_search)
        r("GET", api + "/project/{key}", self.project)
        r("GET", api + "/project/{key}/statuses", self.project_statuses)
        r("GET", api + "/project/{key}/versions", self.project_versions)
        r("POST", api + "/version", self.version_create)
        r("GET", api + "/version/{vid}", self.version_get)
        r("GET", api + "/issuetype", self.issue_types)
        r("GET", api + "/priority", self.priorities)
        r("GET", api + "/resolution", self.resolutions)
        r("GET", api + "/status", self.statuses)
        r("GET", api + "/user", self.user_get)
        r("GET", api + "/user/search", self.user_search)
        r("GET", api + "/user/assignable/search", self.user_search)
        r("POST", api + "/issue", self.issue_create)
        r("POST", api + "/issue/bulk", self.issue_bulk_create)
        r("GET", api + "/issue/{key}", self.issue_get)
        r("PUT", api + "/issue/{key}", self.issue_edit)
        r("DELETE", api + "/issue/{key}", self.issue_delete)
        r("PUT", api + "/issue/{key}/assignee", self.issue_assign)
        r("GET", api + "/issue/{key}/changelog", self.issue_changelog)
        r("GET", api + "/issue/{key}/editmeta", self.issue_editmeta)
        r("GET", api + "/issue/{key}/transitions", self.transitions_get)
        r("POST", api + "/issue/{key}/transitions", self.transitions_post)
        r("GET", api + "/issue/{key}/comment", self.comments_list)
        r("POST", api + "/issue/{key}/comment", self.comment_add)
        r("GET", api + "/issue/{key}/comment/{cid}", self.comment_get)
        r("PUT", api + "/issue/{key}/comment/{cid}", self.comment_edit)
        r("DELETE", api + "/issue/{key}/comment/{cid}", self.comment_delete)
        r("GET", api + "/issue/{key}/worklog", self.worklogs_list)
        r("POST", api + "/issue/{key}/worklog", self.worklog_add)
        r("GET", api + "/issue/{key}/worklog/{wid}", self.worklog_get)
        r("PUT", api + "/issue/{key}/worklog/{wid}", self.worklog_edit)
        r("DELETE", api + "/issue/{key}/worklog/{wid}", self.worklog_delete)
        r("GET", api + "/issue/{key}/properties", self.props_list)
        r("GET", api + "/issue/{key}/properties/{prop}", self.prop_get)
        r("PUT", api + "/issue/{key}/properties/{prop}", self.prop_put)
        r("DELETE", api + "/issue/{key}/properties/{prop}", self.prop_delete)
        r("GET", api + "/issue/{key}/remotelink", self.links_list)
        r("POST", api + "/issue/{key}/remotelink", self.link_add)
        r("GET", api + "/issue/{key}/remotelink/{lid}", self.link_get)
        r("DELETE", api + "/issue/{key}/remotelink/{lid}", self.link_delete)
        r("POST", api + "/issueLink", self.issue_link_create)
        r("GET", api + "/issueLink/{lid}", self.issue_link_get)
        r("DELETE", api + "/issueLink/{lid}", self.issue_link_delete)
        r("GET", api + "/issueLinkType", self.issue_link_types)
        r("POST", api + "/issueLinkType", self.issue_link_type_create)
        r("GET", api + "/issueLinkType/{tid}", self.issue_link_type_get)
        r("POST", api + "/issue/{key}/attachments", self.attachments_add)
        r("GET", api + "/attachment/content/{aid}", self.attachment_content)
        r("GET", api + "/attachment/{aid}", self.attachment_get)
        r("DELETE", api + "/attachment/{aid}", self.attachment_delete)
        r("GET", "/secure/attachment/{aid}/{filename}", self.attachment_content)
        r("GET", api + "/search/jql", self.search_jql)
        r("POST", api + "/search/jql", self.search_jql)
        r("GET", api + "/search", self.search_dc)
        r("POST", api + "/search", self.search_dc)
        hooks = "/rest/webhooks/1.0/webhook"
        r("GET", hooks, self.hooks_list)
        r("POST", hooks, self.hooks_create)
        r("GET", hooks + "/{wid}", self.hooks_get)
        r("PUT", hooks + "/{wid}", self.hooks_update)
        r("DELETE", hooks + "/{wid}", self.hooks_delete)

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, target: str, headers, raw: bytes) -> tuple[Response, bool]:
        """Answer one request. The bool is True when the answer must be lost."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        req = Request(method, path, parse_qs(parts.query, keep_blank_values=True), headers, raw)
        if path == "/" or path.startswith("/_sim") or path.startswith("/browse/"):
            try:
                return self.control(req), False
            except ApiError as e:
                return Response(e.status, e.body()), False
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                return Response(
                    400, {"errorMessages": [f"bad request: {e!r}"], "errors": {}}
                ), False
        started = time.monotonic()
        call = {
            "method": method,
            "path": path,
            "query": parts.query,
            "at": fmt_ts(int(time.time() * 1000)),
            "ts": time.time(),
        }
        resp = self._rest(req, call)
        lost = self._faults_after(method, path, resp, call)
        call["status"] = resp.status
        call["duration_ms"] = int((time.monotonic() - started) * 1000)
        call["user"] = req.user["email"] if req.user else None
        self._log_call(call)
        return resp, lost

    def _log_call(self, call: dict) -> None:
        with self.calls_lock:
            self._call_seq += 1
            call["seq"] = self._call_seq
            self.calls.append(call)
            if len(self.calls) > 50000:
                del self.calls[:10000]

    def _rest(self, req: Request, call: dict) -> Response:
        s = self.store
        handler, path_matched = self._match(req)
        if handler is None:
            if path_matched:
                return Response(405, {"errorMessages": ["Method Not Allowed"], "errors": {}})
            return Response(404, {"errorMessages": ["null for uri: " + req.path], "errors": {}})
        req.version = req.params.pop("v", "2")
        if req.version == "latest":
            req.version = "2"
        req.user = s.authenticate(req.headers.get("Authorization"))
        if req.user is None and handler != self.server_info:
            return Response(
                401,
                {"errorMessages": [_UNAUTHENTICATED], "errors": {}},
                {"WWW-Authenticate": 'Basic realm="protected-area"'},
            )
        if self.faults.applies_to(req.path):
            faulted = self._faults_before(req, call)
            if faulted is not None:
                return faulted
        try:
            with s.viewed_by(req.user["accountId"] if req.user else None):
                resp = handler(req)
        except ApiError as e:
            return Response(e.status, e.body())
        if req.version == "3" and isinstance(resp.body, dict | list):
            _rewrite_self(resp.body, f"{s.base_url}/rest/api/2/", f"{s.base_url}/rest/api/3/")
        return resp

    def _match(self, req: Request) -> tuple[Callable[[Request], Response] | None, bool]:
        """The route for the request (setting ``req.params``), and whether the path exists."""
        handler = None
        path_matched = False
        for method, regex, fn in self.routes:
            m = regex.match(req.path)
            if m:
                path_matched = True
                if method == req.method:
                    handler = fn
                    req.params = {k: v for k, v in m.groupdict().items() if v is not None}
                    break
        if handler is not None and req.params.get("v") == "3" and not self.store.cloud:
            handler = None
            path_matched = False
        return handler, path_matched

    def reset(self, keep_webhooks: bool = False) -> None:
        self.store.reset()
        self.dispatcher.clear(webhooks=not keep_webhooks)
        self.faults.clear()
        with self.calls_lock:
            self.calls.clear()


def _rewrite_self(node: Any, old: str, new: str) -> None:
    """REST v3 answers carry v3 ``self`` links; renderers produce v2 ones."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "self" and isinstance(v, str) and v.startswith(old):
                node[k] = new + v[len(old) :]
            elif isinstance(v, dict | list):
                _rewrite_self(v, old, new)
    elif isinstance(node, list):
        for v in node:
            _rewrite_self(v, old, new)
