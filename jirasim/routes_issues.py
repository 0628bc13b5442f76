"""REST routes on issues: create (single and bulk), get, edit, delete, assign, changelog,
transitions, entity properties, remote links and issue links."""

from __future__ import annotations

from .errors import ApiError
from .request import Request, Response


class IssueRoutes:
    """``/rest/api/{2,3}/issue...`` except comments (mixed into :class:`jirasim.app.App`)."""

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

    def issue_editmeta(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            return Response(200, s.editmeta_json(s.get_issue(req.params["key"])))

    def transitions_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            data = s.transitions_json(
                issue,
                "transitions.fields" in (req.q("expand") or ""),
                unavailable=(req.q("includeUnavailableTransitions") or "").lower() == "true",
            )
        tid = req.q("transitionId")
        if tid:
            data["transitions"] = [t for t in data["transitions"] if t["id"] == tid]
        return Response(200, data)

    def transitions_post(self, req: Request) -> Response:
        self.store.transition(
            actor=req.user, key=req.params["key"], body=req.json() or {}, version=req.version
        )
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

    def issue_link_create(self, req: Request) -> Response:
        self.store.create_issue_link(actor=req.user, body=req.json())
        return Response(201)  # Jira answers 201 with an empty body: no id

    def issue_link_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            return Response(200, s.issue_link_json(s.get_issue_link(req.params["lid"])))

    def issue_link_delete(self, req: Request) -> Response:
        self.store.delete_issue_link(actor=req.user, link_id=req.params["lid"])
        return Response(204)

    def issue_link_types(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            types = [s.link_type_json(t) for t in s.link_types.values()]
        return Response(200, {"issueLinkTypes": types})

    def issue_link_type_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            t = s.link_types.get(req.params["tid"])
            if t is None:
                raise ApiError(404, [f"No issue link type with id '{req.params['tid']}' exists."])
            return Response(200, s.link_type_json(t))

    def issue_link_type_create(self, req: Request) -> Response:
        if not req.user.get("admin"):
            raise ApiError(403, ["You do not have the permission to administer issue link types."])
        s = self.store
        t = s.add_link_type(req.json())
        with s.lock:
            return Response(201, s.link_type_json(t))
