"""REST routes of the admin webhook API ``/rest/webhooks/1.0/webhook`` (site admins only)."""

from __future__ import annotations

from .errors import ApiError
from .request import Request, Response


class WebhookAdminRoutes:
    """Register, list, update and delete webhooks (mixed into :class:`jirasim.app.App`)."""

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
