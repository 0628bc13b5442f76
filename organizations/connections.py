"""Scenario B's handshake: invitation, accept, callback, signed hellos, disconnect, key rotation.

Services in the `<entity>_<action>(*, ...)` style. Outbound calls to the partner's install go
through the same URL policy as Jira URLs (`jira_url_policy`), with no redirects.
Refusals raise `ConnectionRefused` carrying the HTTP status the endpoint answers; nothing is
stored for a refused request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from jiraapi.errors import JiraError
from jiraapi.transport import GuardedAdapter
from jiraapi.urlpolicy import UnsafeUrl, UrlPolicy

from . import envelope, services
from .jira_urls import jira_url_policy
from .models import (
    MAPPED_ONLY,
    STANDARD_FIELDS,
    Connection,
    ConnectionMessage,
    ConnectionRole,
    ConnectionType,
    FieldDirection,
    HandshakeStatus,
    Organization,
    SyncDirection,
)

logger = logging.getLogger(__name__)

# The handshake's own messages, and the change channel's (stored in the inbox, applied by the
# sync engine: see `webhooks.services.peer_message_store`).
CONTROL_TYPES = ("hello", "disconnect", "keyRotation", "offer", "offerAccepted")
CHANNEL_TYPES = ("change", "ack")
MESSAGE_TYPES = (*CONTROL_TYPES, *CHANNEL_TYPES)
# A change carries an issue's shared fields and, when its comments changed, all of them.
MAX_MESSAGE_BYTES = 1024 * 1024
TIMEOUT = (5, 15)


class ConnectionRefused(Exception):
    """A handshake step or message refused; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class PartnerUnavailable(ConnectionRefused):
    """The partner's install could not be reached or answered 429/5xx: worth retrying."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- outbound ----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _session_for(policy: UrlPolicy) -> requests.Session:
    session = requests.Session()
    adapter = GuardedAdapter(policy)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _check_partner_url(url: str) -> None:
    try:
        jira_url_policy().check(url)
    except UnsafeUrl as exc:
        raise ConnectionRefused(f"the partner install's URL is refused: {exc}") from None


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    """POST to the partner's install (policy-checked, no redirects). Raises ConnectionRefused
    (status 400) when the partner cannot be reached."""
    _check_partner_url(url)
    policy = jira_url_policy()
    adapter = _session_for(policy).get_adapter(url)
    try:
        adapter.check(url)
        return _session_for(policy).post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except (requests.RequestException, JiraError) as exc:
        raise PartnerUnavailable(f"the partner install could not be reached: {exc}") from None


def _send_message(connection: Connection, payload: dict[str, Any], *, private_key: str = ""):
    body = json.dumps(payload, separators=(",", ":")).encode()
    return connection_send_signed(connection=connection, body=body, private_key=private_key)


def connection_send_signed(
    *, connection: Connection, body: bytes, message_id: str = "", private_key: str = ""
) -> requests.Response:
    """POST a signed message to the partner's install; PartnerUnavailable when it cannot be
    reached. The caller reads the answer's status."""
    headers = envelope.signed_headers(
        private_key=private_key or connection.signing_private_key,
        body=body,
        message_id=message_id,
    )
    url = f"{connection.partner_base_url}/connections/{connection.partner_connection_id}/messages/"
    return _post(url, body, headers)


def _reason(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]


# --- invitation (inviter) ---------------------------------------------------------------------


def organization_offer(organization: Organization) -> dict[str, list[str]]:
    """What we send the partner (Scenario B): our mapped projects, and the fields that sync
    our way out (the defaults unless mapped pull-only, and those mapped both ways or push),
    comments included."""
    configured = {m.local_field: m.direction for m in organization.field_mappings.all()}
    names = {
        name
        for name in STANDARD_FIELDS
        if name not in MAPPED_ONLY and configured.get(name) != FieldDirection.PULL
    }
    names |= {n for n, d in configured.items() if d in (FieldDirection.BOTH, FieldDirection.PUSH)}
    names.add("comment")
    return {
        "projects": sorted(m.local_project_key for m in organization.project_mappings.all()),
        "fields": sorted(names),
    }


_offers = organization_offer


FIELD_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _field_list(value: Any, what: str) -> list[str]:
    if (
        not isinstance(value, list)
        or len(value) > 500
        or not all(isinstance(v, str) and FIELD_ID_RE.fullmatch(v) for v in value)
    ):
        raise ConnectionRefused(f"'{what}' must be a list of Jira field ids")
    return sorted(set(value))


def _first_offer(projects: list[str], fields: list[str] | None) -> dict[str, Any]:
    """The offer exchanged in the handshake: accepted by accepting the invitation."""
    offer: dict[str, Any] = {"version": 1, "projects": sorted(projects)}
    if fields is not None:
        offer["fields"] = sorted(fields)
    return offer


@transaction.atomic
def invitation_create(*, organization: Organization) -> tuple[str, datetime]:
    """A new invitation for `organization` (the text to paste, its expiry). A second call
    replaces the previous, unused invitation."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    connection = Connection.objects.filter(organization=organization).first()
    if connection and (connection.role != ConnectionRole.INVITER or connection.invitation_spent_at):
        raise ConnectionRefused("this organization is already connected", status=409)
    if connection is None:
        connection = Connection(organization=organization, role=ConnectionRole.INVITER)
    if not connection.signing_private_key:
        connection.signing_private_key, connection.signing_public_key = envelope.generate_key_pair()
    token = secrets.token_urlsafe(32)  # 256 bits
    expires_at = timezone.now() + timedelta(seconds=settings.CONNECTION_INVITATION_TTL_SECONDS)
    connection.invitation_token_hash = _token_hash(token)
    connection.invitation_expires_at = expires_at
    connection.invitation_spent_at = None
    connection.disconnected_at = None
    offers = organization_offer(organization)
    connection.offer_out = connection.offer_out_accepted = _first_offer(
        offers["projects"], offers["fields"]
    )
    connection.save()
    organization.connection_type = ConnectionType.APP
    organization.handshake_status = HandshakeStatus.PENDING
    organization.handshake_activated_at = None
    organization.save(
        update_fields=["connection_type", "handshake_status", "handshake_activated_at"]
    )
    text = envelope.encode_invitation(
        {
            "version": envelope.PROTOCOL_VERSION,
            "baseUrl": settings.PUBLIC_BASE_URL,
            "connectionId": connection.connection_id,
            "token": token,
            "publicKey": connection.signing_public_key,
            "offers": offers,
            "expiresAt": int(expires_at.timestamp()),
        },
        private_key=connection.signing_private_key,
    )
    logger.info(
        "connection.invitation_created",
        extra={"organization": organization.public_id, "connection": connection.connection_id},
    )
    return text, expires_at


def _project_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and envelope.PROJECT_KEY_RE.fullmatch(v) for v in value
    ):
        raise ConnectionRefused(f"'{what}' must be a list of Jira project keys")
    return value


def connection_receive_callback(*, connection_id: str, payload: Any) -> dict[str, Any]:
    """The accepting install calls back with the one-time token: spend it (once) and store the
    partner's URL, connection id, key and allowed projects in the same statement."""
    connection = Connection.objects.filter(
        connection_id=connection_id, role=ConnectionRole.INVITER
    ).first()
    if connection is None:
        raise ConnectionRefused("unknown connection", status=404)
    if not isinstance(payload, dict):
        raise ConnectionRefused("the body must be a JSON object")
    token = payload.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= 200:
        raise ConnectionRefused("invalid or expired invitation token", status=403)
    presented = _token_hash(token)
    if not connection.invitation_token_hash or not hmac.compare_digest(
        presented, connection.invitation_token_hash
    ):
        raise ConnectionRefused("invalid or expired invitation token", status=403)
    if connection.disconnected_at:
        raise ConnectionRefused("the connection is disconnected", status=410)
    if connection.invitation_spent_at:
        raise ConnectionRefused("the invitation has already been used", status=409)
    if not connection.invitation_expires_at or connection.invitation_expires_at <= timezone.now():
        raise ConnectionRefused("invalid or expired invitation token", status=403)
    base_url = payload.get("baseUrl")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConnectionRefused("'baseUrl' must be an http(s) URL")
    base_url = base_url.rstrip("/")
    _check_partner_url(base_url)
    partner_id = payload.get("connectionId")
    if not isinstance(partner_id, str) or not envelope.CONNECTION_ID_RE.fullmatch(partner_id):
        raise ConnectionRefused("'connectionId' is malformed")
    try:
        public_key = envelope.check_public_key(payload.get("publicKey"))
    except envelope.EnvelopeError as exc:
        raise ConnectionRefused(f"'publicKey': {exc}") from None
    projects = _project_list(payload.get("projects"), "projects")
    sent_fields = payload.get("fields")
    if sent_fields is not None:
        sent_fields = _field_list(sent_fields, "fields")
    offer = _first_offer(projects, sent_fields)
    spent = Connection.objects.filter(
        pk=connection.pk,
        invitation_token_hash=presented,
        invitation_spent_at__isnull=True,
        disconnected_at__isnull=True,
    ).update(
        invitation_spent_at=timezone.now(),
        partner_base_url=base_url,
        partner_connection_id=partner_id,
        partner_public_key=public_key,
        partner_projects=projects,
        partner_fields=sent_fields or [],
        offer_in=offer,
        offer_in_accepted=offer,
        updated_at=timezone.now(),
    )
    if not spent:
        raise ConnectionRefused("the invitation has already been used", status=409)
    logger.info(
        "connection.invitation_spent",
        extra={"organization_id": connection.organization_id, "connection": connection_id},
    )
    return {"connectionId": connection.connection_id}


# --- accept (acceptor) ------------------------------------------------------------------------


def invitation_accept(
    *,
    invitation: str,
    name: str,
    project_mappings: list[dict[str, str]],
    sync_direction: str = SyncDirection.PUSH,
) -> Organization:
    """Accept a partner's invitation: a new organization of type `app`, the partner called back
    with the token, then our signed hello. Refused (nothing kept) when the invitation is
    malformed, expired, already used, or the partner cannot be reached."""
    try:
        data = envelope.decode_invitation(invitation)
    except envelope.EnvelopeError as exc:
        raise ConnectionRefused(str(exc)) from None
    base_url = data["baseUrl"].rstrip("/")
    _check_partner_url(base_url)
    offered = set(data["offers"]["projects"])
    for mapping in project_mappings:
        if mapping["remote_project_key"] not in offered:
            raise ConnectionRefused(
                f"the partner does not offer project {mapping['remote_project_key']!r} "
                f"(offered: {', '.join(sorted(offered)) or 'none'})"
            )
    with transaction.atomic():
        organization = services.organization_create(name=name, sync_direction=sync_direction)
        for mapping in project_mappings:
            services.project_mapping_create(organization=organization, **mapping)
        organization.connection_type = ConnectionType.APP
        organization.handshake_status = HandshakeStatus.PENDING
        organization.remote_handshake_token = invitation.strip()
        organization.remote_handshake_token_set_at = timezone.now()
        organization.save()
        private_key, public_key = envelope.generate_key_pair()
        ours = organization_offer(organization)
        theirs = _first_offer(data["offers"]["projects"], data["offers"].get("fields"))
        connection = Connection.objects.create(
            organization=organization,
            role=ConnectionRole.ACCEPTOR,
            signing_private_key=private_key,
            signing_public_key=public_key,
            partner_base_url=base_url,
            partner_connection_id=data["connectionId"],
            partner_public_key=data["publicKey"],
            partner_projects=data["offers"]["projects"],
            partner_fields=data["offers"]["fields"],
            offer_in=theirs,
            offer_in_accepted=theirs,
            offer_out=_first_offer(ours["projects"], ours["fields"]),
            offer_out_accepted=_first_offer(ours["projects"], ours["fields"]),
        )
    body = json.dumps(
        {
            "token": data["token"],
            "baseUrl": settings.PUBLIC_BASE_URL,
            "connectionId": connection.connection_id,
            "publicKey": public_key,
            "projects": ours["projects"],
            "fields": ours["fields"],
        }
    ).encode()
    try:
        response = _post(f"{base_url}/connections/{data['connectionId']}/handshake/", body)
        if response.status_code != 200:
            raise ConnectionRefused(
                f"the partner refused the invitation ({response.status_code}): {_reason(response)}",
                status=400 if response.status_code >= 500 else response.status_code,
            )
    except ConnectionRefused:
        organization.delete()
        raise
    logger.info(
        "connection.accepted",
        extra={"organization": organization.public_id, "connection": connection.connection_id},
    )
    try:
        connection_send_hello(connection=connection)
    except PartnerUnavailable:
        logger.warning("connection.hello_retry", extra={"organization": organization.public_id})
        _enqueue_hello(connection)
    except ConnectionRefused as exc:
        # Stays pending, visible to the admin; a new invitation starts over.
        logger.warning(
            "connection.hello_refused",
            extra={"organization": organization.public_id, "reason": str(exc)[:300]},
        )
    organization.refresh_from_db()
    return organization


# --- messages (both sides) --------------------------------------------------------------------


def _activate_if_ready(connection: Connection) -> None:
    """Both hellos verified: the organization becomes active (once)."""
    if connection.our_hello_verified and connection.partner_hello_verified:
        activated = Organization.objects.filter(
            pk=connection.organization_id, handshake_status=HandshakeStatus.PENDING
        ).update(handshake_status=HandshakeStatus.ACTIVE, handshake_activated_at=timezone.now())
        if activated:
            logger.info(
                "connection.active",
                extra={
                    "organization_id": connection.organization_id,
                    "connection": connection.connection_id,
                },
            )


def _enqueue_hello(connection: Connection) -> None:
    from .tasks import connection_send_hello_task

    transaction.on_commit(lambda: connection_send_hello_task.delay(connection.pk))


def connection_send_hello(*, connection: Connection) -> None:
    """Send our signed hello; a 2xx means the partner verified it."""
    response = _send_message(
        connection, {"type": "hello", "connectionId": connection.connection_id}
    )
    if response.status_code != 200:
        retryable = response.status_code == 429 or response.status_code >= 500
        raise (PartnerUnavailable if retryable else ConnectionRefused)(
            f"the partner refused our hello ({response.status_code}): {_reason(response)}",
            status=400,
        )
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        connection.our_hello_verified = True
        connection.save(update_fields=["our_hello_verified", "updated_at"])
        _activate_if_ready(connection)


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ConnectionRefused("the body must be JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise ConnectionRefused("the body must be a JSON object with a 'type'")
    if payload["type"] not in MESSAGE_TYPES:
        raise ConnectionRefused(
            f"unsupported message type {payload['type'][:40]!r} "
            f"(supported: {', '.join(MESSAGE_TYPES)})",
            status=422,
        )
    return payload


@dataclass(frozen=True)
class Received:
    """A signed message that verified: its connection, body (parsed) and message id."""

    connection: Connection
    payload: dict[str, Any]
    message_id: str

    @property
    def kind(self) -> str:
        return self.payload["type"]


def connection_verify_message(
    *, connection_id: str, headers: Any, body: bytes, now: float | None = None
) -> Received:
    """A signed message from the partner's install, verified (size, connection, signature,
    time window, connection state, shape) before anything is stored. The replay check is
    `connection_message_record`'s, in the transaction that stores what the message brings."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise ConnectionRefused("message too large", status=413)
    if not re.fullmatch(r"[a-f0-9]{32}", connection_id):
        raise ConnectionRefused("unknown connection", status=404)
    connection = Connection.objects.filter(connection_id=connection_id).first()
    if connection is None:
        raise ConnectionRefused("unknown connection", status=404)
    if not connection.partner_public_key:
        raise ConnectionRefused("the connection has no partner yet", status=403)
    try:
        signed = envelope.parse_headers(headers)
        envelope.verify(
            public_keys=[connection.partner_public_key], signed=signed, body=body, now=now
        )
    except envelope.EnvelopeError as exc:
        raise ConnectionRefused(str(exc), status=401) from None
    if connection.disconnected_at:
        raise ConnectionRefused("the connection is disconnected", status=410)
    payload = _parse_body(body)
    if payload["type"] in CHANNEL_TYPES and not connection.is_active:
        raise ConnectionRefused("the connection is not active yet", status=409)
    return Received(connection=connection, payload=payload, message_id=signed.message_id)


def connection_message_record(*, received: Received) -> Connection:
    """Record a verified message's id (inside the caller's transaction), under the
    connection's row lock: a disconnect in between, or an id already seen, refuses it."""
    connection = Connection.objects.select_for_update().get(pk=received.connection.pk)
    if connection.disconnected_at:
        raise ConnectionRefused("the connection is disconnected", status=410)
    try:
        with transaction.atomic():
            ConnectionMessage.objects.create(
                connection=connection, message_id=received.message_id, kind=received.kind[:32]
            )
    except IntegrityError:
        raise ConnectionRefused("message already received (replay)", status=409) from None
    return connection


def connection_receive_message(
    *, connection_id: str, headers: Any, body: bytes, now: float | None = None
) -> dict[str, Any]:
    """A signed handshake message (hello, disconnect, key rotation) from the partner's
    install, verified before anything is stored."""
    received = connection_verify_message(
        connection_id=connection_id, headers=headers, body=body, now=now
    )
    return connection_handle_control(received=received)


def connection_handle_control(*, received: Received) -> dict[str, Any]:
    """Act on a verified handshake message."""
    payload, kind = received.payload, received.kind
    if kind not in CONTROL_TYPES:
        raise ConnectionRefused(f"{kind!r} is not a handshake message", status=422)
    connection = received.connection
    new_key = ""
    if kind == "hello" and payload.get("connectionId") != connection.partner_connection_id:
        raise ConnectionRefused("the hello names another connection")
    if kind == "keyRotation":
        try:
            new_key = envelope.check_public_key(payload.get("publicKey"))
        except envelope.EnvelopeError as exc:
            raise ConnectionRefused(f"'publicKey': {exc}") from None
    version = payload.get("version")
    if kind in ("offer", "offerAccepted") and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        raise ConnectionRefused("'version' must be a positive integer")
    offer = _offer_of(payload.get("offer")) if kind == "offer" else None
    with transaction.atomic():
        connection = connection_message_record(received=received)
        if kind in ("offer", "offerAccepted"):
            _offer_message(connection, kind, version, offer)
        if kind == "hello":
            first = not connection.partner_hello_verified
            connection.partner_hello_verified = True
            connection.save(update_fields=["partner_hello_verified", "updated_at"])
            if first and connection.role == ConnectionRole.INVITER:
                _enqueue_hello(connection)
            _activate_if_ready(connection)
        elif kind == "disconnect":
            _mark_disconnected(connection)
        elif kind == "keyRotation":
            connection.partner_public_key = new_key
            connection.save(update_fields=["partner_public_key", "updated_at"])
    logger.info(
        "connection.message_received",
        extra={
            "connection": connection.connection_id,
            "kind": kind,
            "message_id": received.message_id,
        },
    )
    return {"status": "ok", "type": kind}


# --- what each side sends ----------------------------------------------------------------------


def _offer_of(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ConnectionRefused("'offer' must be an object")
    return {
        "projects": sorted(set(_project_list(value.get("projects"), "offer.projects"))),
        "fields": _field_list(value.get("fields"), "offer.fields"),
    }


def _within(offer: dict, accepted: dict) -> bool:
    """Does `offer` send nothing beyond `accepted` (an accepted offer with no list for a
    kind, from before offers were kept, allows every value of it)?"""
    for kind in ("projects", "fields"):
        if kind in accepted and not set(offer.get(kind) or ()) <= set(accepted[kind]):
            return False
    return True


def _offer_message(connection: Connection, kind: str, version: int, offer: dict | None) -> None:
    """The partner announced what it sends (`offer`), or accepted what we announced."""
    from .relay import outbox_add

    if kind == "offerAccepted":
        if connection.offer_out.get("version") == version:
            connection.offer_out_accepted = dict(connection.offer_out)
            connection.save(update_fields=["offer_out_accepted", "updated_at"])
        return
    if version <= int(connection.offer_in.get("version") or 0):
        return  # an older announcement
    connection.offer_in = {"version": version, **offer}
    fields = ["offer_in", "updated_at"]
    if _within(offer, connection.offer_in_accepted):
        # It sends less than before: nothing for us to decide (each side decides what
        # leaves it); accepted at once.
        connection.offer_in_accepted = dict(connection.offer_in)
        fields.append("offer_in_accepted")
        outbox_add(connection=connection, kind="offerAccepted", payload={"version": version})
    connection.save(update_fields=fields)
    logger.info(
        "connection.offer_received",
        extra={
            "connection": connection.connection_id,
            "version": version,
            "pending": "offer_in_accepted" not in fields,
        },
    )


def connection_offer_refresh(*, connection: Connection) -> bool:
    """Announce what we send when it changed (mappings edited). Sending less takes effect
    at once; sending more, when the partner accepts it. True when announced."""
    from .relay import outbox_add

    if not connection.is_active:
        return False
    current = organization_offer(connection.organization)
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection.pk)
        announced = {k: connection.offer_out.get(k) for k in ("projects", "fields")}
        if connection.offer_out and announced == current:
            return False
        version = int(connection.offer_out.get("version") or 0) + 1
        connection.offer_out = {"version": version, **current}
        if _within(current, connection.offer_out_accepted):
            connection.offer_out_accepted = dict(connection.offer_out)
        connection.save(update_fields=["offer_out", "offer_out_accepted", "updated_at"])
        outbox_add(
            connection=connection, kind="offer", payload={"offer": current, "version": version}
        )
    logger.info(
        "connection.offer_announced",
        extra={"connection": connection.connection_id, "version": version},
    )
    return True


def connection_offer_accept(*, organization: Organization) -> Connection:
    """Accept what the partner now sends (its last announcement): it takes effect on both
    sides (the partner is told)."""
    from .relay import outbox_add

    with transaction.atomic():
        connection = (
            Connection.objects.select_for_update().filter(organization=organization).first()
        )
        if connection is None or not connection.is_active:
            raise ConnectionRefused("no live connection", status=409)
        if not connection.offer_in or connection.offer_in == connection.offer_in_accepted:
            raise ConnectionRefused("nothing new to accept", status=409)
        connection.offer_in_accepted = dict(connection.offer_in)
        connection.save(update_fields=["offer_in_accepted", "updated_at"])
        outbox_add(
            connection=connection,
            kind="offerAccepted",
            payload={"version": connection.offer_in["version"]},
        )
    logger.info("connection.offer_accepted", extra={"connection": connection.connection_id})
    return connection


def _mark_disconnected(connection: Connection) -> None:
    now = timezone.now()
    connection.disconnected_at = now
    connection.save(update_fields=["disconnected_at", "updated_at"])
    Organization.objects.filter(pk=connection.organization_id).update(
        handshake_status=HandshakeStatus.DISCONNECTED, handshake_activated_at=None
    )
    logger.info("connection.disconnected", extra={"connection": connection.connection_id})


def connection_mark_disconnected(*, connection_pk: int) -> None:
    """The partner answered that the connection is disconnected: so it is, here too."""
    with transaction.atomic():
        connection = (
            Connection.objects.select_for_update()
            .filter(pk=connection_pk, disconnected_at__isnull=True)
            .first()
        )
        if connection is not None:
            _mark_disconnected(connection)


def organization_disconnect(*, organization: Organization) -> Organization:
    """Disconnect from the partner's install: marked here first, then the partner is told
    with a signed message (best effort: a partner that cannot be reached refuses our later
    messages anyway, since we send none)."""
    with transaction.atomic():
        connection = (
            Connection.objects.select_for_update().filter(organization=organization).first()
        )
        if connection is None:
            raise ConnectionRefused("this organization has no connection", status=409)
        if connection.disconnected_at:
            raise ConnectionRefused("already disconnected", status=409)
        _mark_disconnected(connection)
    if connection.partner_public_key and connection.partner_base_url:
        try:
            response = _send_message(connection, {"type": "disconnect"})
            if response.status_code != 200:
                logger.warning(
                    "connection.disconnect_refused",
                    extra={"connection": connection.connection_id, "status": response.status_code},
                )
        except ConnectionRefused:
            logger.warning(
                "connection.disconnect_unreachable", extra={"connection": connection.connection_id}
            )
    organization.refresh_from_db()
    return organization


def connection_rotate_key(*, organization: Organization) -> Connection:
    """A new signing key pair: the partner is sent the new public key in a message signed by
    the old key; the new key is kept only when the partner accepted it."""
    connection = Connection.objects.filter(organization=organization).first()
    if connection is None or connection.disconnected_at or not connection.partner_public_key:
        raise ConnectionRefused("no live connection to rotate the key of", status=409)
    private_key, public_key = envelope.generate_key_pair()
    response = _send_message(connection, {"type": "keyRotation", "publicKey": public_key})
    if response.status_code != 200:
        raise ConnectionRefused(
            f"the partner refused the new key ({response.status_code}): {_reason(response)}"
        )
    connection.signing_private_key = private_key
    connection.signing_public_key = public_key
    connection.key_rotated_at = datetime.now(UTC)
    connection.save(
        update_fields=["signing_private_key", "signing_public_key", "key_rotated_at", "updated_at"]
    )
    logger.info("connection.key_rotated", extra={"connection": connection.connection_id})
    return connection
