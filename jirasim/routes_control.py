"""The ``/_sim/...`` control endpoints (faults, call and delivery logs, reset, state, users,
projects) and the HTML pages' entry points ``/`` and ``/browse/KEY``."""

from __future__ import annotations

from .errors import ApiError
from .request import Request, Response

_HTML = "text/html; charset=utf-8"

# path -> method of ControlRoutes; a method answers None for an unsupported HTTP method.
_CONTROL = {
    "/_sim/health": "_sim_health",
    "/_sim/faults": "_sim_faults",
    "/_sim/options": "_sim_options",
    "/_sim/calls": "_sim_calls",
    "/_sim/deliveries": "_sim_deliveries",
    "/_sim/idle": "_sim_idle",
    "/_sim/reset": "_sim_reset",
    "/_sim/state": "_sim_state",
    "/_sim/save": "_sim_save",
    "/_sim/users": "_sim_users",
    "/_sim/projects": "_sim_projects",
    "/_sim/move": "_sim_move",
}


class ControlRoutes:
    """Test and operator controls, no auth (mixed into :class:`jirasim.app.App`)."""

    def control(self, req: Request) -> Response:
        p, m = req.path, req.method
        if p in ("/", "/_sim") and m == "GET":
            return Response(200, self.html_index(), content_type=_HTML)
        if p.startswith("/browse/") and m == "GET":
            return Response(200, self.html_issue(p[len("/browse/") :]), content_type=_HTML)
        name = _CONTROL.get(p)
        resp = getattr(self, name)(req) if name else None
        if resp is None:
            raise ApiError(404, [f"No such control endpoint: {m} {p}"])
        return resp

    def _sim_health(self, req: Request) -> Response | None:
        return Response(200, {"ok": True, "flavor": self.store.flavor})

    def _sim_faults(self, req: Request) -> Response | None:
        m = req.method
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
        return None

    def _sim_options(self, req: Request) -> Response | None:
        options = self.store.options
        if req.method == "GET":
            return Response(200, options.snapshot())
        if req.method in ("POST", "PUT"):
            try:
                return Response(200, options.update(req.json() or {}))
            except (TypeError, ValueError) as e:
                raise ApiError(400, [str(e)]) from None
        if req.method == "DELETE":
            return Response(200, options.restore())
        return None

    def _sim_calls(self, req: Request) -> Response | None:
        m = req.method
        if m == "GET":
            since = req.qint("since", 0)
            with self.calls_lock:
                calls = [c for c in self.calls if c["seq"] > since]
                total = self._call_seq
            by: dict[str, int] = {}
            for c in calls:
                k = f"{c['method']} {c['path']}"
                by[k] = by.get(k, 0) + 1
            return Response(200, {"count": len(calls), "total": total, "by": by, "calls": calls})
        if m == "DELETE":
            with self.calls_lock:
                self.calls.clear()
            return Response(204)
        return None

    def _sim_deliveries(self, req: Request) -> Response | None:
        m = req.method
        if m == "GET":
            since = req.qint("since", 0)
            with_body = req.q("body", "true") != "false"
            log = self.dispatcher.log(since, with_body)
            return Response(200, {"count": len(log), "deliveries": log})
        if m == "DELETE":
            with self.dispatcher.lock:
                self.dispatcher.deliveries.clear()
            return Response(204)
        return None

    def _sim_idle(self, req: Request) -> Response | None:
        if req.method != "GET":
            return None
        ok = self.dispatcher.wait_idle(float(req.q("timeout", "10")))
        return Response(200 if ok else 504, {"idle": ok})

    def _sim_reset(self, req: Request) -> Response | None:
        if req.method != "POST":
            return None
        keep = req.q("keep_webhooks") in ("1", "true")
        self.reset(keep_webhooks=keep)
        return Response(204)

    def _sim_state(self, req: Request) -> Response | None:
        if req.method != "GET":
            return None
        return Response(200, self.store.dump())

    def _sim_save(self, req: Request) -> Response | None:
        if req.method != "POST":
            return None
        if self.save_hook is None:
            raise ApiError(400, ["No state file configured (start with --state FILE)."])
        self.save_hook()
        return Response(204)

    def _sim_users(self, req: Request) -> Response | None:
        if req.method != "POST":
            return None
        body = req.json() or {}
        u = self.store.add_user(
            email=body["email"],
            token=body.get("token", "secret-token"),
            display_name=body.get("displayName"),
            admin=bool(body.get("admin")),
        )
        return Response(
            201, {**self.store.user_json(u["accountId"], reveal=True), "token": u["token"]}
        )

    def _sim_projects(self, req: Request) -> Response | None:
        if req.method != "POST":
            return None
        body = req.json() or {}
        proj = self.store.add_project(key=body["key"], name=body.get("name"))
        return Response(201, self.store.project_json(proj, full=True))

    def _sim_move(self, req: Request) -> Response | None:
        """Move an issue to another project: ``{"issue": KEY, "project": KEY, "as": email}``
        (the actor defaults to the site admin)."""
        if req.method != "POST":
            return None
        body = req.json() or {}
        s = self.store
        actor = s.find_user(body.get("as")) if body.get("as") else next(iter(s.users.values()))
        if actor is None:
            raise ApiError(400, [f"No user {body.get('as')!r}."])
        issue = s.move_issue(actor=actor, key=str(body["issue"]), project=str(body["project"]))
        return Response(200, {"id": issue["id"], "key": issue["key"]})
