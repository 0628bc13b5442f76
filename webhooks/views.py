"""Webhook endpoints. Authentication lives in one base view; each endpoint stays short.

No outbound call happens here: a delivery is checked, stored and answered.
"""

import hmac
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jiraapi.events import JiraEvent
from organizations import selectors as org_selectors
from organizations import services as org_services
from organizations.models import Organization

from . import auth, services
from .models import DeliverySource, DeliveryStatus
from .tasks import delivery_enqueue

logger = logging.getLogger(__name__)


class Refused(Exception):
    """A delivery we will not store. The status is one Jira does not retry."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


class WebhookBaseView(APIView):
    """Reads the raw body within the size limit, checks the content type, parses the JSON
    once into a `JiraEvent`.

    Subclasses authenticate (`authenticate`) and store (`accept`).
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    # Webhooks carry no CSRF token and no session; DRF skips CSRF without authentication.

    def post(self, request: Request, **kwargs) -> Response:
        try:
            body = self.read_body(request)
            # Parsed once, early (authentication may look at it); an error in it is only
            # reported after the checks that come first.
            try:
                event, bad_json = self.parse(body), None
            except Refused as exc:
                event, bad_json = None, exc
            context = self.authenticate(request, body, event, **kwargs)
            self.check_content_type(request)
            if bad_json is not None:
                raise bad_json
        except Refused as exc:
            logger.warning(
                "delivery.refused",
                extra={"endpoint": self.endpoint_name, "code": exc.code, "status": exc.status_code},
            )
            return Response({"error": exc.code, "message": exc.message}, status=exc.status_code)
        return self.accept(request, body, event, context)

    endpoint_name = "webhook"

    def read_body(self, request: Request) -> bytes:
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        too_big = Refused(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            "body_too_large",
            f"The body is larger than the limit of {limit} bytes.",
        )
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        try:
            body = request.body
        except RequestDataTooBig:
            raise too_big from None
        if len(body) > limit:
            raise too_big
        return body

    def check_content_type(self, request: Request) -> None:
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refused(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Deliveries must be sent as application/json.",
            )

    def parse(self, body: bytes) -> JiraEvent:
        try:
            return JiraEvent.from_body(body)
        except (ValueError, UnicodeDecodeError):
            raise Refused(
                status.HTTP_400_BAD_REQUEST, "invalid_json", "The body is not a JSON object."
            ) from None

    def check_signature(self, request: Request, body: bytes, *, secret: str, required: bool):
        header = request.headers.get(auth.SIGNATURE_HEADER, "")
        if not header:
            if required:
                raise Refused(
                    status.HTTP_401_UNAUTHORIZED,
                    "signature_missing",
                    f"A valid {auth.SIGNATURE_HEADER} header is required.",
                )
            return
        if not auth.signature_valid(body=body, header=header, secret=secret):
            raise Refused(
                status.HTTP_401_UNAUTHORIZED,
                "signature_invalid",
                f"The {auth.SIGNATURE_HEADER} header does not match the body.",
            )

    def authenticate(self, request: Request, body: bytes, event: JiraEvent | None, **kwargs):
        raise NotImplementedError

    def accept(self, request: Request, body: bytes, event: JiraEvent, context) -> Response:
        raise NotImplementedError

    @staticmethod
    def answer(delivery, created: bool) -> Response:
        return Response(
            {"delivery": delivery.pk, "status": delivery.status, "duplicate": not created},
            # 202: stored and queued; 200: a repeat, or recorded as ignored.
            status=(
                status.HTTP_202_ACCEPTED
                if created and delivery.status == DeliveryStatus.PENDING
                else status.HTTP_200_OK
            ),
        )


class LocalWebhookApi(WebhookBaseView):
    """`POST /webhooks/local/?secret=...`: our own Jira's webhook (the push direction).

    The secret is `LOCAL_WEBHOOK_SECRET`, given as `?secret=` or as the key of an
    `X-Hub-Signature` HMAC over the body.
    """

    endpoint_name = "local"

    def authenticate(self, request: Request, body: bytes, event: JiraEvent | None) -> None:
        secret = settings.LOCAL_WEBHOOK_SECRET
        if not secret:
            raise Refused(
                status.HTTP_403_FORBIDDEN,
                "not_configured",
                "LOCAL_WEBHOOK_SECRET is not set; local deliveries are refused.",
            )
        given = request.query_params.get("secret", "")
        if given and hmac.compare_digest(given.encode(), secret.encode()):
            return
        if request.headers.get(auth.SIGNATURE_HEADER):
            self.check_signature(request, body, secret=secret, required=True)
            return
        raise Refused(status.HTTP_401_UNAUTHORIZED, "unauthorized", "Wrong or missing secret.")

    def accept(self, request, body, event, context) -> Response:
        delivery, created = services.delivery_store(
            source=DeliverySource.LOCAL,
            organization=None,
            body=body,
            event=event,
            headers=dict(request.headers),
        )
        if created and delivery.status == DeliveryStatus.PENDING:
            delivery_enqueue(delivery.pk)
        return self.answer(delivery, created)


class IncomingWebhookApi(WebhookBaseView):
    """`POST /webhooks/incoming/<org-id>/?secret=...`: the partner Jira's webhook."""

    endpoint_name = "incoming"
    # The same answer for an unknown organization and a wrong secret: ids cannot be probed.
    _unknown = (status.HTTP_401_UNAUTHORIZED, "unauthorized", "Unknown organization or secret.")

    def authenticate(
        self, request: Request, body: bytes, event: JiraEvent | None, *, org_id: str
    ) -> Organization:
        secret = request.query_params.get("secret", "")
        organization = org_selectors.organization_get(
            public_id=org_id, project_key=event.project_key if event is not None else ""
        )
        if organization is None:
            # Spend the same comparison an existing organization would.
            org_selectors.organization_secret_matches(
                organization=Organization(incoming_secret="-" * 43), secret=secret
            )
            raise Refused(*self._unknown)
        if not secret or not org_selectors.organization_secret_matches(
            organization=organization, secret=secret
        ):
            raise Refused(*self._unknown)
        if not organization.enabled:
            raise Refused(
                status.HTTP_403_FORBIDDEN, "organization_disabled", "This organization is disabled."
            )
        if not organization.is_bidirectional:
            raise Refused(
                status.HTTP_403_FORBIDDEN,
                "two_way_off",
                "Two-way sync is off for this organization; deliveries are not accepted.",
            )
        if organization.remote_handshake_token or organization.require_signature:
            self.check_signature(
                request,
                body,
                secret=organization.remote_handshake_token,
                required=organization.require_signature,
            )
        return organization

    def accept(self, request, body, event, organization: Organization) -> Response:
        # The row commits on its own (delivery_store); the task is sent right after.
        delivery, created = services.delivery_store(
            source=DeliverySource.PARTNER,
            organization=organization,
            body=body,
            event=event,
            headers=dict(request.headers),
        )
        if created and delivery.status == DeliveryStatus.PENDING:
            delivery_enqueue(delivery.pk, organization_id=organization.pk)
        org_services.organization_record_delivery(organization=organization)
        return self.answer(delivery, created)
