"""REST routes about the site and its people: serverInfo, myself, fields, projects and
their versions, issue types, priorities, resolutions, statuses, users."""

from __future__ import annotations

import time

from .clock import fmt_ts
from .errors import ApiError
from .model import ISSUE_TYPES, PRIORITIES, RESOLUTIONS
from .request import Request, Response


class MetaRoutes:
    """Read-only site metadata and user lookups (mixed into :class:`jirasim.app.App`)."""

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

    def _project_named(self, req: Request) -> dict:
        """The project the path names by key or id (call under the store lock); else 404."""
        key = req.params["key"]
        for p in self.store.projects.values():
            if key.upper() == p["key"] or key == p["id"]:
                return p
        raise ApiError(404, [f"No project could be found with key '{key}'."])

    def project(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            return Response(200, s.project_json(self._project_named(req), full=True))

    def project_versions(self, req: Request) -> Response:
        """Jira's `GET project/{key}/versions`: every version of the project, unpaged."""
        s = self.store
        with s.lock:
            p = self._project_named(req)
            return Response(200, [s.version_json(p, v) for v in p["versions"]])

    def version_create(self, req: Request) -> Response:
        """Jira's `POST version` (`jirasim/versions.py`): 201 with the new version."""
        s = self.store
        proj, version = s.create_version(actor=req.user, body=req.json())
        with s.lock:
            return Response(201, s.version_json(proj, version))

    def version_get(self, req: Request) -> Response:
        s = self.store
        proj, version = s.find_version(req.params["vid"])
        with s.lock:
            return Response(200, s.version_json(proj, version))

    def project_statuses(self, req: Request) -> Response:
        """Jira's `GET project/{key}/statuses`: per issue type, the statuses of its workflow
        (a status may be in the workflow with no transition leading into it)."""
        s = self.store
        key = req.params["key"]
        with s.lock:
            if not any(key.upper() == p["key"] or key == p["id"] for p in s.projects.values()):
                raise ApiError(404, [f"No project could be found with key '{key}'."])
            names = s.workflow_statuses()
            statuses = [s.status_json(sid) for sid in s.statuses if s.statuses[sid][1] in names]
            return Response(
                200,
                [
                    {
                        "self": f"{s.base_url}/rest/api/2/issuetype/{t[0]}",
                        "id": t[0],
                        "name": t[1],
                        "subtask": t[3],
                        "statuses": statuses,
                    }
                    for t in ISSUE_TYPES
                ],
            )

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
                hay = [u["displayName"].lower(), u["name"].lower()]
                # A hidden e-mail address is not searchable either (profile visibility).
                if s.email_visible(u["accountId"]):
                    hay.append(u["email"].lower())
                if s.cloud:
                    hay.append(u["accountId"].lower())
                if term in ("", ".", "%") or any(h.startswith(term) or term in h for h in hay):
                    out.append(s.user_json(u["accountId"]))
        return Response(200, out[: req.qint("maxResults", 50)])
