"""Webhook endpoints. Authentication lives in one base view; each endpoint stays short.

No outbound call happens here: a delivery is checked, stored and answered.
"""

import hmac
import json
import logging
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from core import throttle
from jiraapi.events import JiraEvent
from organizations import connections
from organizations import services as org_services
from organizations.public_views import ConnectionPublicView

from . import auth, blocks, bodies, services
from .models import DeliverySource, DeliveryStatus
from .tasks import delivery_stored_enqueue

logger = logging.getLogger(__name__)


class Refused(Exception):
    """A delivery we will not store. The status is one Jira does not retry."""

    def __init__(
        self, status_code: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.retry_after = retry_after


# An identifier we store in a column of its own: printable text, no control characters
# (PostgreSQL refuses NUL; a newline forges log lines), no lone surrogates (not encodable).
_CLEAN = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*")


def _meta_key(header: str) -> str:
    """Where the WSGI environ holds a request header (as `request.headers` reads it)."""
    return "HTTP_" + header.upper().replace("-", "_")


# Read straight from the environ: `request.headers` would parse every header of the request.
_SIGNATURE_META = _meta_key(auth.SIGNATURE_HEADER)
_KEPT_META = tuple((name, _meta_key(name)) for name in services.KEPT_HEADERS)


def json_response(data: dict, status_code: int) -> HttpResponse:
    """The JSON answer DRF's `JSONRenderer` would give (compact, UTF-8), with the headers of
    DRF's answers on these views, without its negotiation and rendering per request."""
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
        status=status_code,
        content_type="application/json",
    )
    response["Allow"] = "POST, OPTIONS"
    response["Vary"] = "Accept"
    return response


class WebhookBaseView(APIView):
    """Authenticates before it reads or parses: first what the URL alone decides (the secret
    in the query string, a throttle on repeated failures), then the body within the size
    limit, then the signature over its raw bytes, then the content type, then the JSON once,
    depth-limited, into a `JiraEvent` whose stored identifiers are checked.

    Subclasses authenticate (`authenticate_url`, `authenticate_body`) and store (`accept`).
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    # Webhooks carry no CSRF token and no session; DRF skips CSRF without authentication.

    endpoint_name = "webhook"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        """A POST is answered on Django's request, always in JSON: DRF's request wrapping,
        content negotiation and rendering cost a delivery more than its authentication. Other
        methods go through DRF (405, OPTIONS)."""
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs, self.request = args, kwargs, request
        return self.post(request, **kwargs)

    def post(self, request: HttpRequest, **kwargs) -> HttpResponse:
        client, target = self.client_address(request), self.throttle_target(**kwargs)
        try:
            wait = throttle.retry_after(client=client, target=target)
            if wait is not None:
                self.blocked(client=client, target=target)
                raise Refused(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    "too_many_failures",
                    "Too many failed authentications from this address; try again later.",
                    retry_after=wait,
                )
            self.check_declared_size(request)
            try:
                context = self.authenticate_url(request, **kwargs)
                body = self.read_body(request)
                context = self.authenticate_body(request, body, context)
            except Refused as exc:
                if exc.status_code == status.HTTP_401_UNAUTHORIZED and throttle.record_failure(
                    client=client, target=target
                ):
                    self.blocked(client=client, target=target)
                raise
            self.check_content_type(request)
            event = self.parse(body)
            self.check_event(event)
        except Refused as exc:
            logger.warning(
                "delivery.refused",
                extra={"endpoint": self.endpoint_name, "code": exc.code, "status": exc.status_code},
            )
            response = json_response({"error": exc.code, "message": exc.message}, exc.status_code)
            if exc.retry_after is not None:
                response["Retry-After"] = str(exc.retry_after)
            return response
        return self.accept(request, body, event, context)

    @staticmethod
    def client_address(request: HttpRequest) -> str:
        """The client's address (see `core.throttle.client_address`)."""
        return throttle.client_address(request.META)

    def throttle_target(self, **kwargs) -> str:
        return self.endpoint_name

    def blocked(self, *, client: str, target: str) -> None:
        """`client` is throttled on `target` until the window ends (it just reached the limit,
        or was refused for it)."""

    def _too_big(self) -> Refused:
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        return Refused(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            "body_too_large",
            f"The body is larger than the limit of {limit} bytes.",
        )

    def check_declared_size(self, request: HttpRequest) -> None:
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > settings.WEBHOOK_MAX_BODY_BYTES:
            raise self._too_big()

    def read_body(self, request: HttpRequest) -> bytes:
        """The raw body, at most WEBHOOK_MAX_BODY_BYTES, with a Content-Length or chunked."""
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        if not request.META.get("CONTENT_LENGTH") and "chunked" in (
            request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            try:
                body = bodies.read_chunked(request.META, limit)
            except bodies.BodyTooLarge:
                raise self._too_big() from None
            except bodies.MalformedBody:
                raise Refused(
                    status.HTTP_400_BAD_REQUEST,
                    "invalid_body",
                    "The chunked body is malformed.",
                ) from None
            except bodies.UnreadableBody:
                raise Refused(
                    status.HTTP_411_LENGTH_REQUIRED,
                    "length_required",
                    "This server cannot read a chunked body; send a Content-Length.",
                ) from None
        else:
            try:
                body = request.body
            except RequestDataTooBig:
                raise self._too_big() from None
        if len(body) > limit:
            raise self._too_big()
        return body

    def check_content_type(self, request: HttpRequest) -> None:
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
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refused(
                status.HTTP_400_BAD_REQUEST, "invalid_json", "The body is not a JSON object."
            ) from None

    def check_event(self, event: JiraEvent) -> None:
        """The identifiers stored in their own columns or looked up hold no control characters
        (PostgreSQL refuses NUL) and no lone surrogates (not encodable); no Jira key, id or
        event type does. Elsewhere in the body such characters are stored as sent."""
        for name, value in (
            ("webhookEvent", event.kind),
            ("issue id", event.issue_id),
            ("issue key", event.issue_key),
            ("project key", event.project_key),  # looked up in the organization's mappings
        ):
            if not _CLEAN.fullmatch(value):
                raise Refused(
                    status.HTTP_400_BAD_REQUEST,
                    "invalid_field",
                    f"The {name} holds control characters or invalid text.",
                )

    def check_signature(self, request: HttpRequest, body: bytes, *, secret: str, required: bool):
        header = request.META.get(_SIGNATURE_META, "")
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

    def authenticate_url(self, request: HttpRequest, **kwargs):
        """What the URL and headers alone decide, before the body is read."""
        raise NotImplementedError

    def authenticate_body(self, request: HttpRequest, body: bytes, context):
        """What needs the raw bytes (a signature); returns the context `accept` gets."""
        return context

    def accept(self, request: HttpRequest, body: bytes, event: JiraEvent, context) -> HttpResponse:
        raise NotImplementedError

    @staticmethod
    def store(
        request: HttpRequest,
        body: bytes,
        event: JiraEvent,
        *,
        source: str,
        organization=None,
        config_version: int | None = None,
        client_key: str = "",
    ):
        """Store the delivery once; a new pending one is queued once the row is committed
        (by the relay's notification, or published from here: `delivery_stored_enqueue`).
        Returns (delivery, created)."""
        delivery, created = services.delivery_store(
            source=source,
            organization=organization,
            config_version=config_version,
            client_key=client_key,
            body=body,
            event=event,
            headers={
                name: value
                for name, key in _KEPT_META
                if (value := request.META.get(key)) is not None
            },
        )
        if created and delivery.status == DeliveryStatus.PENDING:
            delivery_stored_enqueue(
                delivery.pk, organization_id=organization.pk if organization is not None else None
            )
        return delivery, created

    @staticmethod
    def answer(delivery, created: bool) -> HttpResponse:
        return json_response(
            {"delivery": delivery.pk, "status": delivery.status, "duplicate": not created},
            # 202: stored and queued; 200: a repeat, or recorded as ignored.
            (
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

    def authenticate_url(self, request: HttpRequest) -> bool:
        """True when the URL's secret settles it; False when the signature must."""
        secret = settings.LOCAL_WEBHOOK_SECRET
        if not secret:
            raise Refused(
                status.HTTP_403_FORBIDDEN,
                "not_configured",
                "LOCAL_WEBHOOK_SECRET is not set; local deliveries are refused.",
            )
        given = request.GET.get("secret", "")
        if given and hmac.compare_digest(given.encode(), secret.encode()):
            return True
        if request.META.get(_SIGNATURE_META):
            return False  # checked over the body, once it is read
        raise Refused(status.HTTP_401_UNAUTHORIZED, "unauthorized", "Wrong or missing secret.")

    def authenticate_body(self, request: HttpRequest, body: bytes, context: bool) -> None:
        if not context:
            self.check_signature(request, body, secret=settings.LOCAL_WEBHOOK_SECRET, required=True)

    def accept(self, request, body, event, context) -> HttpResponse:
        return self.answer(*self.store(request, body, event, source=DeliverySource.LOCAL))


class IncomingWebhookApi(WebhookBaseView):
    """`POST /webhooks/incoming/<org-id>/?secret=...`: the partner Jira's webhook.

    The organization and its secret are checked on the URL alone (the same work for an
    unknown organization as for a wrong secret), in one query that also reads what storing
    the delivery needs (the organization's columns, the partner projects it maps); its
    signature secret is decrypted only once the secret matched.

    A process keeps the credentials of the deliveries it accepted with an organization's
    current secret (`webhooks.auth.incoming_credentials_cached`): the next ones with that id
    and secret are known, and make no query and no read of the throttle but their INSERT
    (`accept_known`). That statement checks that the organization's `config_version` has not
    moved since (a rotated secret, a disabled organization, two-way sync turned off, a project
    mapping changed, the organization deleted) and that no live block names the sender (a
    client throttled for failed authentications, `webhooks.blocks`); otherwise the row is
    held, never announced, and deleted. Then, as for anything else that is not an accepted
    delivery (a refusal, a repeat), the request is answered afresh (`WebhookBaseView.post`)
    as if nothing were kept, throttle first: every change still applies to the very next
    delivery in every web process, and a throttled client gets 429 whatever it sends. A
    wrong secret or an unknown id is never known, and does the same work as before.
    """

    endpoint_name = "incoming"
    # The same answer for an unknown organization and a wrong secret: ids cannot be probed.
    _unknown = (status.HTTP_401_UNAUTHORIZED, "unauthorized", "Unknown organization or secret.")
    _body: bytes | None = None
    _unreadable: Refused | None = None

    def throttle_target(self, *, org_id: str) -> str:
        return f"incoming:{org_id}"

    def blocked(self, *, client: str, target: str) -> None:
        blocks.auth_block_record(client=client, target=target)

    def post(self, request: HttpRequest, *, org_id: str) -> HttpResponse:
        known = auth.incoming_credentials_cached(
            public_id=org_id, secret=request.GET.get("secret", "")
        )
        if known is not None:
            response = self.accept_known(request, known, org_id=org_id)
            if response is not None:
                return response
        return super().post(request, org_id=org_id)

    def accept_known(
        self, request: HttpRequest, credentials: auth.IncomingCredentials, *, org_id: str
    ) -> HttpResponse | None:
        """Store a delivery on kept `credentials`, as an accepted one: None when it is not
        one (a refusal, a repeat, stale credentials, a blocked sender), to be answered afresh
        in the usual order, the throttle first (so a throttled client's refusal, whatever
        it is for, is a 429)."""
        try:
            self.check_declared_size(request)
            body = self.read_body(request)
            self.authenticate_body(request, body, credentials)
            self.check_content_type(request)
            event = self.parse(body)
            self.check_event(event)
        except Refused:
            return None
        client = throttle.key_digest(
            client=self.client_address(request), target=self.throttle_target(org_id=org_id)
        )
        try:
            delivery, created = self.store(
                request,
                body,
                event,
                source=DeliverySource.PARTNER,
                organization=credentials.organization_for(event.project_key),
                config_version=credentials.config_version,
                client_key=client,
            )
        except services.CredentialsUnconfirmed:
            auth.incoming_credentials_forget(credentials)
            return None
        return self.accepted(request, delivery, created, credentials)

    def authenticate_url(self, request: HttpRequest, *, org_id: str) -> auth.IncomingCredentials:
        secret = request.GET.get("secret", "")
        credentials = auth.incoming_credentials(public_id=org_id, secret=secret)
        if not credentials.matches:
            raise Refused(*self._unknown)
        if not credentials.enabled:
            raise Refused(
                status.HTTP_403_FORBIDDEN, "organization_disabled", "This organization is disabled."
            )
        if credentials.app_connection:
            raise Refused(
                status.HTTP_403_FORBIDDEN,
                "app_connection",
                "This organization is connected to the partner's own install of the service; "
                "its changes come as signed messages, not as Jira webhooks.",
            )
        if not credentials.bidirectional:
            raise Refused(
                status.HTTP_403_FORBIDDEN,
                "two_way_off",
                "Two-way sync is off for this organization; deliveries are not accepted.",
            )
        return credentials

    def read_body(self, request: HttpRequest) -> bytes:
        # Read once: a request answered afresh (`post`) is not read again (a chunked body's
        # stream is spent), and a body refused once is refused again for the same reason.
        if self._body is None:
            if self._unreadable is not None:
                raise self._unreadable
            try:
                self._body = super().read_body(request)
            except Refused as exc:
                self._unreadable = exc
                raise
        return self._body

    def authenticate_body(
        self, request: HttpRequest, body: bytes, credentials: auth.IncomingCredentials
    ) -> auth.IncomingCredentials:
        if credentials.signature_secret or credentials.require_signature:
            self.check_signature(
                request,
                body,
                secret=credentials.signature_secret,
                required=credentials.require_signature,
            )
        return credentials

    def accept(self, request, body, event, credentials: auth.IncomingCredentials) -> HttpResponse:
        # Read with the credentials, in the same query (with the projects it maps).
        organization = credentials.organization_for(event.project_key)
        # The row commits on its own (delivery_store); the task is sent right after.
        try:
            delivery, created = self.store(
                request, body, event, source=DeliverySource.PARTNER, organization=organization
            )
        except services.OrganizationGone:  # deleted since it was authenticated
            return json_response(
                dict(zip(("error", "message"), self._unknown[1:], strict=True)), 401
            )
        return self.accepted(request, delivery, created, credentials)

    def accepted(
        self, request: HttpRequest, delivery, created: bool, credentials: auth.IncomingCredentials
    ) -> HttpResponse:
        org_services.organization_record_delivery(organization=credentials.organization)
        auth.incoming_credentials_remember(
            public_id=self.kwargs["org_id"],
            secret=request.GET.get("secret", ""),
            credentials=credentials,
        )
        return self.answer(delivery, created)


class ConnectionMessagesApi(ConnectionPublicView):
    """Signed messages from the partner's install (Scenario B): the handshake's (hello,
    disconnect, key rotation), and changes and acks, which go into the inbox like a Jira
    delivery. Every refusal is a 4xx and stores nothing."""

    def handle(self, request, *, connection_id: str) -> dict:
        body = self.read_body(request)
        received = connections.connection_verify_message(
            connection_id=connection_id, headers=request.headers, body=body
        )
        if received.kind in connections.CHANNEL_TYPES:
            return services.peer_message_store(received=received, body=body)
        return connections.connection_handle_control(received=received)
