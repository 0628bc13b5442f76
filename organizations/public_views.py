"""Scenario B's public endpoints, called by the partner's install: no user, but every request
proves itself (the one-time invitation token, or a signature by the partner's key). Thin: read
the bounded raw body, call one service, answer. Refusals are 4xx and store nothing."""

import json

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import throttle

from . import connections


class ConnectionPublicView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def read_body(self, request) -> bytes:
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > connections.MAX_MESSAGE_BYTES:
            raise connections.ConnectionRefused("message too large", status=413)
        try:
            body = request.body
        except RequestDataTooBig:
            raise connections.ConnectionRefused("message too large", status=413) from None
        if len(body) > connections.MAX_MESSAGE_BYTES:
            raise connections.ConnectionRefused("message too large", status=413)
        return body

    def handle(self, request, **kwargs) -> dict:
        raise NotImplementedError

    @extend_schema(request=None)
    def post(self, request, **kwargs):
        """Failed proofs (a wrong token, a bad signature) are counted per client address and
        connection, as the webhook endpoints count theirs; past the limit, 429 for a while."""
        client = throttle.client_address(request.META)
        target = f"connection:{str(kwargs.get('connection_id', ''))[:64]}"
        wait = throttle.retry_after(client=client, target=target)
        if wait is not None:
            detail = "Too many failed attempts from this address; try again later."
            return Response({"detail": detail}, status=429, headers={"Retry-After": str(wait)})
        try:
            return Response(self.handle(request, **kwargs))
        except connections.ConnectionRefused as exc:
            if exc.status in (401, 403):
                throttle.record_failure(client=client, target=target)
            return Response({"detail": str(exc)}, status=exc.status)


class ConnectionHandshakeView(ConnectionPublicView):
    """The accepting install calls back with the invitation's one-time token."""

    def handle(self, request, *, connection_id: str) -> dict:
        body = self.read_body(request)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise connections.ConnectionRefused("the body must be JSON") from None
        return connections.connection_receive_callback(connection_id=connection_id, payload=payload)
