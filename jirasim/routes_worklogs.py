"""REST routes on an issue's worklogs: list, add, get, edit, delete."""

from __future__ import annotations

from .request import Request, Response, paged

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
        return paged(req, "worklogs", logs, 5000)

    def _worklog_change(self, req: Request) -> dict:
        """The arguments every worklog change takes from a request."""
        return {
            "actor": req.user,
            "key": req.params["key"],
            "version": req.version,
            "query": _estimate_query(req),
        }

    def _worklog_answer(self, req: Request, status: int, changed: tuple[dict, dict]) -> Response:
        issue, w = changed
        with self.store.lock:
            return Response(status, self.store.worklog_json(issue, w, req.version))

    def worklog_add(self, req: Request) -> Response:
        changed = self.store.add_worklog(body=req.json(), **self._worklog_change(req))
        return self._worklog_answer(req, 201, changed)

    def worklog_get(self, req: Request) -> Response:
        with self.store.lock:
            changed = self.store.get_worklog(req.params["key"], req.params["wid"])
        return self._worklog_answer(req, 200, changed)

    def worklog_edit(self, req: Request) -> Response:
        changed = self.store.edit_worklog(
            wid=req.params["wid"], body=req.json(), **self._worklog_change(req)
        )
        return self._worklog_answer(req, 200, changed)

    def worklog_delete(self, req: Request) -> Response:
        args = self._worklog_change(req)
        del args["version"]
        self.store.delete_worklog(wid=req.params["wid"], **args)
        return Response(204)
