"""REST routes on an issue's worklogs: list, add, get, edit, delete."""

from __future__ import annotations

from .request import Request, Response

_ESTIMATE_PARAMS = ("adjustEstimate", "newEstimate", "reduceBy", "increaseBy")


def _estimate_query(req: Request) -> dict:
    return {k: req.q(k) for k in _ESTIMATE_PARAMS if req.q(k)}


class WorklogRoutes:
    """``/rest/api/{2,3}/issue/{key}/worklog...`` (mixed into :class:`jirasim.app.App`)."""

    def worklogs_list(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            logs = [s.worklog_json(issue, w, req.version) for w in s._worklogs(issue)]
        start = req.qint("startAt", 0)
        size = max(min(req.qint("maxResults", 5000), 5000), 0)
        return Response(
            200,
            {
                "startAt": start,
                "maxResults": size,
                "total": len(logs),
                "worklogs": logs[start : start + size],
            },
        )

    def worklog_add(self, req: Request) -> Response:
        s = self.store
        issue, w = s.add_worklog(
            actor=req.user,
            key=req.params["key"],
            body=req.json(),
            version=req.version,
            query=_estimate_query(req),
        )
        with s.lock:
            return Response(201, s.worklog_json(issue, w, req.version))

    def worklog_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue, w = s.get_worklog(req.params["key"], req.params["wid"])
            return Response(200, s.worklog_json(issue, w, req.version))

    def worklog_edit(self, req: Request) -> Response:
        s = self.store
        issue, w = s.edit_worklog(
            actor=req.user,
            key=req.params["key"],
            wid=req.params["wid"],
            body=req.json(),
            version=req.version,
            query=_estimate_query(req),
        )
        with s.lock:
            return Response(200, s.worklog_json(issue, w, req.version))

    def worklog_delete(self, req: Request) -> Response:
        self.store.delete_worklog(
            actor=req.user,
            key=req.params["key"],
            wid=req.params["wid"],
            query=_estimate_query(req),
        )
        return Response(204)
