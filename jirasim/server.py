"""HTTP front of the simulator: routing, auth, fault injection, control endpoints, HTML."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import itertools
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import adf
from .faults import Faults
from .model import CLOUD, CUSTOM_FIELDS, ISSUE_TYPES, PRIORITIES, RESOLUTIONS
from .store import ApiError, Store, fmt_ts, select_fields
from .webhooks import Dispatcher

WRITE_METHODS = {"POST", "PUT", "DELETE"}


class Response:
    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict | None = None,
        content_type: str = "application/json;charset=UTF-8",
    ):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type


class Request:
    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers, raw: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw = raw
        self.user: dict | None = None
        self.version = "2"
        self.params: dict[str, str] = {}

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default

    def qint(self, name: str, default: int) -> int:
        raw = self.q(name)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(
                400, [f"The value '{raw}' is invalid for the '{name}' parameter."]
            ) from None

    def qlist(self, name: str) -> list[str] | None:
        vals = self.query.get(name)
        if not vals:
            return None
        return [x for v in vals for x in v.split(",")]

    def json(self) -> Any:
        if not self.raw:
            return None
        try:
            return json.loads(self.raw)
        except ValueError:
            raise ApiError(400, ["Unexpected character: was expecting a JSON value"]) from None


Route = tuple[str, re.Pattern, Callable[[Request], Response]]


class App:
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
        r("GET", api + "/issue/{key}/transitions", self.transitions_get)
        r("POST", api + "/issue/{key}/transitions", self.transitions_post)
        r("GET", api + "/issue/{key}/comment", self.comments_list)
        r("POST", api + "/issue/{key}/comment", self.comment_add)
        r("GET", api + "/issue/{key}/comment/{cid}", self.comment_get)
        r("PUT", api + "/issue/{key}/comment/{cid}", self.comment_edit)
        r("DELETE", api + "/issue/{key}/comment/{cid}", self.comment_delete)
        r("GET", api + "/issue/{key}/properties", self.props_list)
        r("GET", api + "/issue/{key}/properties/{prop}", self.prop_get)
        r("PUT", api + "/issue/{key}/properties/{prop}", self.prop_put)
        r("DELETE", api + "/issue/{key}/properties/{prop}", self.prop_delete)
        r("GET", api + "/issue/{key}/remotelink", self.links_list)
        r("POST", api + "/issue/{key}/remotelink", self.link_add)
        r("GET", api + "/issue/{key}/remotelink/{lid}", self.link_get)
        r("DELETE", api + "/issue/{key}/remotelink/{lid}", self.link_delete)
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
        lost = False
        resp = self._rest(req, call)
        if (
            method in WRITE_METHODS
            and resp.status < 400
            and call.get("fault") is None
            and path.startswith("/rest/api")
            and self.faults.applies_to(path)
            and self.faults.take("response_lost")
        ):
            lost = True
            call["fault"] = "response_lost"
        elif (
            call.get("fault") is None
            and path.startswith("/rest/")
            and self.faults.applies_to(path)
            and self.faults.take("slow_response")
        ):
            call["fault"] = "slow_response"
            time.sleep(self.faults.get("slow_response_ms") / 1000.0)
        call["status"] = resp.status
        call["duration_ms"] = int((time.monotonic() - started) * 1000)
        call["user"] = req.user["email"] if req.user else None
        with self.calls_lock:
            self._call_seq += 1
            call["seq"] = self._call_seq
            self.calls.append(call)
            if len(self.calls) > 50000:
                del self.calls[:10000]
        return resp, lost

    def _rest(self, req: Request, call: dict) -> Response:
        s = self.store
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
        if handler is not None and req.params.get("v") == "3" and not s.cloud:
            handler = None
            path_matched = False
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
                {
                    "errorMessages": [
                        "You are not authenticated. Authentication required to perform this "
                        "operation."
                    ],
                    "errors": {},
                },
                {"WWW-Authenticate": 'Basic realm="protected-area"'},
            )
        if self.faults.applies_to(req.path):
            latency = self.faults.get("latency_ms")
            if latency:
                time.sleep(latency / 1000.0)
            who = req.user["accountId"] if req.user else "anonymous"
            reason = "jira-quota-tenant-based"
            limited = self.faults.take("rate_limit") or not self.faults.bucket_take(who)
            issue_key = req.params.get("key")
            if (
                not limited
                and issue_key
                and req.method in WRITE_METHODS
                and "/issue/" in req.path
                and not self.faults.bucket_take(issue_key.upper(), "issue_write_rps")
            ):
                limited, reason = True, "jira-per-issue-on-write"
            if limited:
                call["fault"] = "rate_limit"
                ra = int(self.faults.get("retry_after"))
                reset = fmt_ts(int((time.time() + ra) * 1000))
                return Response(
                    429,
                    {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                    {
                        "Retry-After": str(ra),
                        "X-RateLimit-Limit": "100",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": reset,
                        "RateLimit-Reason": reason,
                    },
                )
            if self.faults.take("error"):
                status = self.faults.choice(self.faults.get("error_statuses"))
                call["fault"] = f"error_{status}"
                hdrs = (
                    {"Retry-After": str(int(self.faults.get("retry_after")))}
                    if status == 503
                    else {}
                )
                return Response(
                    status,
                    {"errorMessages": ["Internal server error"], "errors": {}},
                    hdrs,
                )
        try:
            resp = handler(req)
        except ApiError as e:
            return Response(e.status, e.body())
        if req.version == "3" and isinstance(resp.body, dict | list):
            _rewrite_self(resp.body, f"{s.base_url}/rest/api/2/", f"{s.base_url}/rest/api/3/")
        return resp

    # ------------------------------------------------------------------ REST handlers
    def server_info(self, req: Request) -> Response:
        s = self.store
        if s.cloud:
            info = {
                "baseUrl": s.base_url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100265,
                "buildDate": "2026-01-01T00:00:00.000+0000",
                "serverTime": fmt_ts(int(time.time() * 1000)),
                "scmInfo": "0" * 40,
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            }
        else:
            info = {
                "baseUrl": s.base_url,
                "version": "9.12.0",
                "versionNumbers": [9, 12, 0],
                "deploymentType": "Server",
                "buildNumber": 9120000,
                "buildDate": "2023-11-28T00:00:00.000+0000",
                "serverTime": fmt_ts(int(time.time() * 1000)),
                "scmInfo": "0" * 40,
                "serverTitle": "Jira",
            }
        return Response(200, info)

    def myself(self, req: Request) -> Response:
        return Response(200, self.store.myself_json(req.user))

    def fields(self, req: Request) -> Response:
        return Response(200, self.store.fields_json())

    def projects(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            return Response(200, [s.project_json(p) for p in s.projects.values()])

    def project_search(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            vals = [s.project_json(p) for p in s.projects.values()]
        return Response(
            200,
            {"startAt": 0, "maxResults": 50, "total": len(vals), "isLast": True, "values": vals},
        )

    def project(self, req: Request) -> Response:
        s = self.store
        key = req.params["key"]
        with s.lock:
            for p in s.projects.values():
                if key.upper() == p["key"] or key == p["id"]:
                    return Response(200, s.project_json(p, full=True))
        raise ApiError(404, [f"No project could be found with key '{key}'."])

    def issue_types(self, req: Request) -> Response:
        return Response(200, [self.store.issuetype_json(t[0]) for t in ISSUE_TYPES])

    def priorities(self, req: Request) -> Response:
        return Response(200, [self.store.priority_json(p[0]) for p in PRIORITIES])

    def resolutions(self, req: Request) -> Response:
        return Response(200, [self.store.resolution_json(r[0]) for r in RESOLUTIONS])

    def statuses(self, req: Request) -> Response:
        return Response(200, [self.store.status_json(sid) for sid in self.store.statuses])

    def user_get(self, req: Request) -> Response:
        s = self.store
        ident = req.q("accountId") if s.cloud else (req.q("username") or req.q("key"))
        u = s.find_user(ident)
        if u is None or (s.cloud and u["accountId"] != ident):
            raise ApiError(404, [f"User '{ident}' does not exist."])
        return Response(200, s.user_json(u["accountId"]))

    def user_search(self, req: Request) -> Response:
        s = self.store
        if s.cloud:
            term = req.q("query")
            if term is None and req.q("accountId") is None:
                raise ApiError(400, ["The query parameter 'query' is required."])
            term = (term or req.q("accountId") or "").lower()
        else:
            term = req.q("username")
            if term is None:
                raise ApiError(400, ["The username query parameter was not provided"])
            term = term.lower()
        out = []
        with s.lock:
            for u in s.users.values():
                hay = [u["email"].lower(), u["displayName"].lower(), u["name"].lower()]
                if s.cloud:
                    hay.append(u["accountId"].lower())
                if term in ("", ".", "%") or any(h.startswith(term) or term in h for h in hay):
                    out.append(s.user_json(u["accountId"]))
        return Response(200, out[: req.qint("maxResults", 50)])

    def issue_create(self, req: Request) -> Response:
        s = self.store
        issue = s.create_issue(actor=req.user, body=req.json(), version=req.version)
        return Response(
            201,
            {
                "id": issue["id"],
                "key": issue["key"],
                "self": f"{s.base_url}/rest/api/{req.version}/issue/{issue['id']}",
            },
        )

    def issue_bulk_create(self, req: Request) -> Response:
        s = self.store
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("issueUpdates"), list):
            raise ApiError(400, ["Issue updates must be provided"])
        if len(body["issueUpdates"]) > 50:
            raise ApiError(400, ["Bulk create is limited to 50 issues."])
        issues, errors = [], []
        for n, one in enumerate(body["issueUpdates"]):
            try:
                issue = s.create_issue(actor=req.user, body=one, version=req.version)
            except ApiError as e:
                errors.append(
                    {
                        "status": e.status,
                        "elementErrors": e.body(),
                        "failedElementNumber": n,
                    }
                )
                continue
            issues.append(
                {
                    "id": issue["id"],
                    "key": issue["key"],
                    "self": f"{s.base_url}/rest/api/{req.version}/issue/{issue['id']}",
                }
            )
        return Response(201 if issues else 400, {"issues": issues, "errors": errors})

    def issue_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            return Response(
                200,
                s.issue_json(
                    issue,
                    req.version,
                    fields=req.qlist("fields"),
                    expand=req.q("expand"),
                    properties=req.qlist("properties"),
                ),
            )

    def issue_edit(self, req: Request) -> Response:
        self.store.edit_issue(
            actor=req.user, key=req.params["key"], body=req.json() or {}, version=req.version
        )
        if req.q("returnIssue") == "true":
            return self.issue_get(req)
        return Response(204)

    def issue_delete(self, req: Request) -> Response:
        self.store.delete_issue(
            actor=req.user,
            key=req.params["key"],
            delete_subtasks=req.q("deleteSubtasks", "false").lower() == "true",
        )
        return Response(204)

    def issue_assign(self, req: Request) -> Response:
        self.store.assign(actor=req.user, key=req.params["key"], body=req.json() or {})
        return Response(204)

    def issue_changelog(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            hist = [s.history_json(h) for h in issue["history"]]
        start = req.qint("startAt", 0)
        size = req.qint("maxResults", 100)
        page = hist[start : start + size]
        return Response(
            200,
            {
                "self": f"{s.base_url}{req.path}",
                "maxResults": size,
                "startAt": start,
                "total": len(hist),
                "isLast": start + size >= len(hist),
                "values": page,
            },
        )

    def transitions_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            data = s.transitions_json(issue, "transitions.fields" in (req.q("expand") or ""))
        tid = req.q("transitionId")
        if tid:
            data["transitions"] = [t for t in data["transitions"] if t["id"] == tid]
        return Response(200, data)

    def transitions_post(self, req: Request) -> Response:
        self.store.transition(
            actor=req.user, key=req.params["key"], body=req.json() or {}, version=req.version
        )
        return Response(204)

    def comments_list(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            comments = [s.comment_json(issue, c, req.version) for c in issue["comments"]]
        if req.q("orderBy", "created").startswith("-"):
            comments.reverse()
        start = req.qint("startAt", 0)
        size = min(req.qint("maxResults", 5000), 5000)
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(comments),
                "comments": comments[start : start + size],
            },
        )

    def comment_add(self, req: Request) -> Response:
        s = self.store
        issue, c = s.add_comment(
            actor=req.user, key=req.params["key"], body=req.json(), version=req.version
        )
        with s.lock:
            return Response(201, s.comment_json(issue, c, req.version))

    def comment_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue, c = s.get_comment(req.params["key"], req.params["cid"])
            return Response(200, s.comment_json(issue, c, req.version))

    def comment_edit(self, req: Request) -> Response:
        s = self.store
        issue, c = s.edit_comment(
            actor=req.user,
            key=req.params["key"],
            cid=req.params["cid"],
            body=req.json(),
            version=req.version,
        )
        with s.lock:
            return Response(200, s.comment_json(issue, c, req.version))

    def comment_delete(self, req: Request) -> Response:
        self.store.delete_comment(actor=req.user, key=req.params["key"], cid=req.params["cid"])
        return Response(204)

    def props_list(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            keys = [{"self": f"{s.base_url}{req.path}/{k}", "key": k} for k in issue["properties"]]
        return Response(200, {"keys": keys})

    def prop_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            prop = req.params["prop"]
            if prop not in issue["properties"]:
                raise ApiError(404, [f"The property with key '{prop}' does not exist."])
            return Response(200, {"key": prop, "value": issue["properties"][prop]})

    def prop_put(self, req: Request) -> Response:
        if not req.raw:
            raise ApiError(400, ["The property value cannot be empty."])
        existed = self.store.set_property(req.params["key"], req.params["prop"], req.json())
        return Response(200 if existed else 201)

    def prop_delete(self, req: Request) -> Response:
        self.store.delete_property(req.params["key"], req.params["prop"])
        return Response(204)

    def links_list(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            links = [s.remote_link_json(issue, link) for link in issue["remotelinks"]]
        gid = req.q("globalId")
        if gid:
            links = [link for link in links if link.get("globalId") == gid]
        return Response(200, links)

    def link_add(self, req: Request) -> Response:
        s = self.store
        link, created = s.add_remote_link(req.params["key"], req.json() or {})
        with s.lock:
            issue = s.get_issue(req.params["key"])
            out = s.remote_link_json(issue, link)
        return Response(201 if created else 200, {"id": out["id"], "self": out["self"]})

    def link_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            for link in issue["remotelinks"]:
                if str(link["id"]) == req.params["lid"]:
                    return Response(200, s.remote_link_json(issue, link))
        raise ApiError(404, ["No remote link with the given id."])

    def link_delete(self, req: Request) -> Response:
        self.store.delete_remote_link(req.params["key"], req.params["lid"])
        return Response(204)

    def _search_params(self, req: Request) -> dict:
        if req.method == "POST":
            body = req.json() or {}
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid search request"])
            fields = body.get("fields")
            if isinstance(fields, str):
                fields = fields.split(",")
            expand = body.get("expand")
            if isinstance(expand, list):
                expand = ",".join(expand)
            props = body.get("properties")
            return {
                "jql": body.get("jql"),
                "fields": fields,
                "expand": expand,
                "properties": props,
                "maxResults": body.get("maxResults"),
                "startAt": body.get("startAt"),
                "nextPageToken": body.get("nextPageToken"),
            }
        return {
            "jql": req.q("jql"),
            "fields": req.qlist("fields"),
            "expand": req.q("expand"),
            "properties": req.qlist("properties"),
            "maxResults": req.q("maxResults"),
            "startAt": req.q("startAt"),
            "nextPageToken": req.q("nextPageToken"),
        }

    def _render_hits(self, hits: list[dict], p: dict, version: str, default_fields) -> list:
        s = self.store
        fields = p["fields"] if p["fields"] is not None else default_fields
        out = []
        for issue in hits:
            if fields == ["id"]:
                out.append({"id": issue["id"]})
                continue
            j = s.issue_json(issue, version, expand=p["expand"], properties=p["properties"])
            wanted = list(fields)
            if not any(w in ("*all",) or w == "comment" for w in wanted):
                wanted += ["-comment", "-worklog"]
            j["fields"] = select_fields(j["fields"], wanted)
            out.append(j)
        return out

    def search_jql(self, req: Request) -> Response:
        s = self.store
        if not s.cloud:
            return Response(404, {"errorMessages": ["null for uri: " + req.path], "errors": {}})
        p = self._search_params(req)
        from . import jql as jqlmod

        try:
            q = jqlmod.parse(p["jql"])
        except jqlmod.JqlError as e:
            raise ApiError(400, [str(e)]) from None
        if q.where is None:
            raise ApiError(
                400,
                [
                    "Unbounded JQL queries are not allowed here. Please add a search "
                    "restriction to your query."
                ],
            )
        size = _int(p["maxResults"], 50, "maxResults")
        size = max(1, min(size, 5000 if p["fields"] in (None, ["id"]) else 100))
        offset = 0
        digest = hashlib.sha256((p["jql"] or "").encode()).hexdigest()[:10]
        if p["nextPageToken"]:
            try:
                tok = json.loads(base64.urlsafe_b64decode(p["nextPageToken"].encode()))
                offset = int(tok["o"])
                if tok["q"] != digest:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    400, ["The provided next page token is invalid or expired."]
                ) from None
        with s.lock:
            hits = s.search(p["jql"], req.user, lag_ms=self.faults.get("search_lag_ms"))
            page = hits[offset : offset + size]
            issues = self._render_hits(page, p, req.version, ["id"])
        body: dict[str, Any] = {"issues": issues}
        is_last = offset + size >= len(hits)
        if not is_last:
            tok = json.dumps({"o": offset + size, "q": digest}).encode()
            body["nextPageToken"] = base64.urlsafe_b64encode(tok).decode()
        body["isLast"] = is_last
        return Response(200, body)

    def search_dc(self, req: Request) -> Response:
        s = self.store
        if s.cloud:
            return Response(
                410,
                {
                    "errorMessages": [
                        "The requested API has been removed. Please migrate to the "
                        "/rest/api/3/search/jql API. A full migration guideline is available "
                        "at https://developer.atlassian.com/changelog/#CHANGE-2046"
                    ],
                    "errors": {},
                },
            )
        p = self._search_params(req)
        start = max(0, _int(p["startAt"], 0, "startAt"))
        size = max(0, min(_int(p["maxResults"], 50, "maxResults"), 1000))
        with s.lock:
            hits = s.search(p["jql"], req.user, lag_ms=self.faults.get("search_lag_ms"))
            issues = self._render_hits(hits[start : start + size], p, "2", ["*navigable"])
        return Response(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(hits),
                "issues": issues,
            },
        )

    # webhooks admin
    def _admin(self, req: Request) -> None:
        if not req.user.get("admin"):
            raise ApiError(403, ["You do not have the permission to manage webhooks."])

    def hooks_list(self, req: Request) -> Response:
        self._admin(req)
        d = self.dispatcher
        with d.lock:
            return Response(200, [d.webhook_json(w) for w in d.webhooks.values()])

    def hooks_create(self, req: Request) -> Response:
        self._admin(req)
        wh = self.dispatcher.register(req.json(), req.user)
        return Response(201, self.dispatcher.webhook_json(wh))

    def _wid(self, req: Request) -> int:
        try:
            return int(req.params["wid"])
        except ValueError:
            raise ApiError(404, ["Webhook not found"]) from None

    def hooks_get(self, req: Request) -> Response:
        self._admin(req)
        return Response(200, self.dispatcher.webhook_json(self.dispatcher.get(self._wid(req))))

    def hooks_update(self, req: Request) -> Response:
        self._admin(req)
        wh = self.dispatcher.register(req.json(), req.user, wid=self._wid(req))
        return Response(200, self.dispatcher.webhook_json(wh))

    def hooks_delete(self, req: Request) -> Response:
        self._admin(req)
        self.dispatcher.delete(self._wid(req))
        return Response(204)

    # ------------------------------------------------------------------ control + html
    def control(self, req: Request) -> Response:
        p, m = req.path, req.method
        if p in ("/", "/_sim") and m == "GET":
            return Response(200, self.html_index(), content_type="text/html; charset=utf-8")
        if p.startswith("/browse/") and m == "GET":
            return Response(
                200, self.html_issue(p[len("/browse/") :]), content_type="text/html; charset=utf-8"
            )
        if p == "/_sim/health":
            return Response(200, {"ok": True, "flavor": self.store.flavor})
        if p == "/_sim/faults":
            if m == "GET":
                return Response(200, self.faults.snapshot())
            if m in ("POST", "PUT"):
                try:
                    self.faults.update(req.json() or {})
                except ValueError as e:
                    raise ApiError(400, [str(e)]) from None
                return Response(200, self.faults.snapshot())
            if m == "DELETE":
                self.faults.clear()
                return Response(200, self.faults.snapshot())
        if p == "/_sim/calls":
            if m == "GET":
                since = req.qint("since", 0)
                with self.calls_lock:
                    calls = [c for c in self.calls if c["seq"] > since]
                    total = self._call_seq
                by: dict[str, int] = {}
                for c in calls:
                    k = f"{c['method']} {c['path']}"
                    by[k] = by.get(k, 0) + 1
                return Response(
                    200, {"count": len(calls), "total": total, "by": by, "calls": calls}
                )
            if m == "DELETE":
                with self.calls_lock:
                    self.calls.clear()
                return Response(204)
        if p == "/_sim/deliveries":
            if m == "GET":
                since = req.qint("since", 0)
                with_body = req.q("body", "true") != "false"
                log = self.dispatcher.log(since, with_body)
                return Response(200, {"count": len(log), "deliveries": log})
            if m == "DELETE":
                with self.dispatcher.lock:
                    self.dispatcher.deliveries.clear()
                return Response(204)
        if p == "/_sim/idle" and m == "GET":
            ok = self.dispatcher.wait_idle(float(req.q("timeout", "10")))
            return Response(200 if ok else 504, {"idle": ok})
        if p == "/_sim/reset" and m == "POST":
            keep = req.q("keep_webhooks") in ("1", "true")
            self.reset(keep_webhooks=keep)
            return Response(204)
        if p == "/_sim/state" and m == "GET":
            return Response(200, self.store.dump())
        if p == "/_sim/save" and m == "POST":
            if self.save_hook is None:
                raise ApiError(400, ["No state file configured (start with --state FILE)."])
            self.save_hook()
            return Response(204)
        if p == "/_sim/users" and m == "POST":
            body = req.json() or {}
            u = self.store.add_user(
                email=body["email"],
                token=body.get("token", "secret-token"),
                display_name=body.get("displayName"),
                admin=bool(body.get("admin")),
            )
            return Response(201, {**self.store.user_json(u["accountId"]), "token": u["token"]})
        if p == "/_sim/projects" and m == "POST":
            body = req.json() or {}
            proj = self.store.add_project(key=body["key"], name=body.get("name"))
            return Response(201, self.store.project_json(proj, full=True))
        raise ApiError(404, [f"No such control endpoint: {m} {p}"])

    def reset(self, keep_webhooks: bool = False) -> None:
        self.store.reset()
        self.dispatcher.clear(webhooks=not keep_webhooks)
        self.faults.clear()
        with self.calls_lock:
            self.calls.clear()

    def html_index(self) -> str:
        s = self.store
        e = html.escape
        rows = []
        with s.lock:
            for p in s.projects.values():
                rows.append(f"<h2>{e(p['key'])} — {e(p['name'])}</h2><table>")
                rows.append(
                    "<tr><th>Key</th><th>Type</th><th>Summary</th><th>Status</th>"
                    "<th>Priority</th><th>Assignee</th><th>Updated</th><th>Comments</th></tr>"
                )
                issues = sorted(
                    (i for i in s.issues.values() if i["project"] == p["key"]),
                    key=lambda i: -int(i["id"]),
                )
                for i in issues:
                    f = s.issue_fields(i)
                    who = (f["assignee"] or {}).get("displayName", "")
                    rows.append(
                        f"<tr><td><a href='/browse/{e(i['key'])}'>{e(i['key'])}</a></td>"
                        f"<td>{e(f['issuetype']['name'])}</td><td>{e(i['summary'])}</td>"
                        f"<td>{e(f['status']['name'])}</td><td>{e(f['priority']['name'])}</td>"
                        f"<td>{e(who)}</td><td>{e(f['updated'])}</td>"
                        f"<td>{len(i['comments'])}</td></tr>"
                    )
                rows.append("</table>")
            hooks = len(self.dispatcher.webhooks)
        body = "\n".join(rows)
        return _page(
            f"jirasim ({s.flavor})",
            f"<p>{s.flavor} site at {e(s.base_url)} · {hooks} webhook(s) · "
            f"<a href='/_sim/deliveries'>deliveries</a> · <a href='/_sim/calls'>calls</a> · "
            f"<a href='/_sim/faults'>faults</a></p>{body}",
        )

    def html_issue(self, key: str) -> str:
        s = self.store
        e = html.escape
        with s.lock:
            try:
                i = s.get_issue(key)
            except ApiError:
                return _page("Not found", f"<p>No issue {e(key)}.</p>")
            f = s.issue_fields(i)
            rows = []
            for name, val in (
                ("Type", f["issuetype"]["name"]),
                ("Status", f["status"]["name"]),
                ("Resolution", (f["resolution"] or {}).get("name", "Unresolved")),
                ("Priority", f["priority"]["name"]),
                ("Assignee", (f["assignee"] or {}).get("displayName", "Unassigned")),
                ("Reporter", (f["reporter"] or {}).get("displayName", "")),
                ("Labels", ", ".join(i["labels"])),
                ("Due", i["duedate"] or ""),
                ("Created", f["created"]),
                ("Updated", f["updated"]),
            ):
                rows.append(f"<tr><th>{e(name)}</th><td>{e(str(val))}</td></tr>")
            for fid, (fname, _, _) in CUSTOM_FIELDS.items():
                if i["custom"].get(fid) is not None:
                    rows.append(f"<tr><th>{e(fname)}</th><td>{e(str(i['custom'][fid]))}</td></tr>")
            if i["properties"]:
                rows.append(
                    f"<tr><th>Properties</th><td><code>{e(json.dumps(i['properties']))}</code></td></tr>"
                )
            comments = "".join(
                f"<div class='c'><b>{e(s.users[c['author']]['displayName'])}</b> "
                f"<small>{e(fmt_ts(c['created']))}</small><pre>{e(c['body'])}</pre></div>"
                for c in i["comments"]
            )
            history = "".join(
                f"<li>{e(fmt_ts(h['created']))}: "
                + ", ".join(
                    f"{e(it['field'])}: {e(str(it['fromString']))} → {e(str(it['toString']))}"
                    for it in h["items"]
                )
                + "</li>"
                for h in i["history"]
            )
            desc = e(i["description"] or "")
        return _page(
            f"{i['key']}: {i['summary']}",
            f"<p><a href='/'>← all issues</a></p><table>{''.join(rows)}</table>"
            f"<h3>Description</h3><pre>{desc}</pre><h3>Comments</h3>{comments or '<p>none</p>'}"
            f"<h3>History</h3><ul>{history}</ul>",
        )


def _int(value: Any, default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(
            400, [f"The value '{value}' is invalid for the '{name}' parameter."]
        ) from None


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


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}.c{border-left:3px solid #0052cc;padding-left:8px;margin:8px 0}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, app: App):
        self.app = app
        super().__init__(addr, handler)


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
    ):
        projs = []
        for key, name in _parse_pairs(projects or ["TEST:Test Project"]):
            projs.append((key.upper(), name or key.title()))
        self.users = _parse_pairs(users) or [("admin@example.com", "secret-token")]
        self.flavor = flavor
        self.host = host
        self.public_url = public_url.rstrip("/") if public_url else None
        self.state_file = state_file
        self.store = Store(flavor=flavor, projects=projs, users=self.users)
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
        self._server: _Server | None = None
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
        self._server = _Server((self.host, port), Handler, self.app)
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

    def clear_faults(self) -> None:
        self.faults.clear()

    def calls(self) -> list[dict]:
        with self.app.calls_lock:
            return list(self.app.calls)

    def reset(self, keep_webhooks: bool = False) -> None:
        self.app.reset(keep_webhooks=keep_webhooks)

    def adf(self, text: str) -> dict:
        return adf.wiki_to_adf(text)
