"""Who may post: the URL secret (looked up with the same work whether the organization exists
or not) and the signature over the raw bytes, both checked before anything is parsed."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core import crypto
from organizations import selectors as org_selectors
from organizations.models import ConnectionType, Organization, ProjectMapping, SyncDirection

SIGNATURE_HEADER = "X-Hub-Signature"
# What an organization's public id may be, at most (its validator is stricter).
_POSSIBLE_ID = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,63}")


def signature_for(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(*, body: bytes, header: str, secret: str) -> bool:
    """`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time."""
    return hmac.compare_digest(signature_for(body, secret).encode(), header.strip().encode())


@dataclass(frozen=True)
class IncomingCredentials:
    """What the URL alone decides: whether the secret is the organization's, and whether the
    organization takes deliveries. `pk` is None for an unknown organization."""

    pk: int | None
    matches: bool
    enabled: bool
    bidirectional: bool
    # The partner's webhook secret (X-Hub-Signature), decrypted only when `matches`.
    signature_secret: str = ""
    require_signature: bool = False
    # Connected to another install of this service (Scenario B): changes come as signed
    # messages, never as the partner's Jira webhooks.
    app_connection: bool = False
    # The organization as read in the same query (only the columns storing a delivery needs;
    # the others are deferred), when `matches`.
    organization: Organization | None = None
    # The partner projects it maps, read in the same query (PostgreSQL); None: not read.
    mapped_projects: frozenset[str] | None = None
    # The organization's `config_version` as read in the same query (PostgreSQL, when
    # `matches`), and whether the secret was the current one (not a rotated-out one).
    config_version: int | None = None
    current_secret: bool = False
    # Taken from this process's cache of accepted credentials, unread: storing the delivery
    # must confirm `config_version` (`webhooks.services.delivery_store`).
    cached: bool = False
    # The cache's key for the URL's (organization id, secret), when read or cached.
    cache_key: bytes = b""

    def organization_for(self, project_key: str) -> Organization | None:
        """The organization, with whether it maps `project_key` (`maps_project`, which
        `webhooks.services.delivery_store` reads) when the query read its mappings."""
        organization = self.organization
        if organization is not None and self.mapped_projects is not None:
            organization.maps_project = project_key in self.mapped_projects
        return organization


# The organization's columns an accepted delivery needs (storing it, noting it arrived).
_ORGANIZATION_FIELDS = (
    "id",
    "public_id",
    "name",
    "enabled",
    "sync_direction",
    "connection_type",
    "require_signature",
    "last_delivery_at",
    "handshake_status",
)


# What a stored secret and a stored list of rotated-out secrets look like (one entry, long
# expired), so that decrypting and reading a decoy costs what a real one does.
_DECOY_SECRET = "-" * 43
_DECOY_PREVIOUS = json.dumps([{"secret": _DECOY_SECRET, "validUntil": "2000-01-01T00:00:00+00:00"}])


@cache
def _decoy_ciphertexts(keys: tuple[str, ...]) -> tuple[str, str]:
    """The decoys, encrypted once per key set."""
    return crypto.encrypt(_DECOY_SECRET), crypto.encrypt(_DECOY_PREVIOUS)


@cache
def _credentials_sql(vendor: str) -> str:
    """`incoming_credentials`'s query, built once per database vendor."""
    meta = Organization._meta
    columns = ", ".join(
        f"o.{meta.get_field(name).column}"
        for name in (
            "incoming_secret",
            "previous_incoming_secrets",
            "previous_secret_valid_until",
            "remote_handshake_token",
            *_ORGANIZATION_FIELDS,
            "config_version",
        )
    )
    # Its mapped partner projects in the same query, where the database has arrays (the
    # delivery's project is known only once the body is parsed, after authentication).
    if vendor == "postgresql":
        mapping = ProjectMapping._meta
        columns += (
            f", ARRAY(SELECT m.{mapping.get_field('remote_project_key').column}"  # noqa: S608
            f" FROM {mapping.db_table} m WHERE m.{mapping.get_field('organization').column} = o.id)"
        )
    return (
        f"SELECT {columns} FROM {meta.db_table} o WHERE o.{meta.get_field('public_id').column} = %s"  # noqa: S608 - names from the model; the value is bound
    )


def incoming_credentials(*, public_id: str, secret: str) -> IncomingCredentials:
    """Check `secret` against organization `public_id` with the same work whether or not the
    organization exists: one query by the unique id, two decryptions (the current secret and
    the list of rotated-out ones, or a decoy in place of each missing one) and the
    constant-time comparisons of `organizations.selectors.organization_secret_matches` (two,
    unless more than one rotated-out secret is in its grace period).

    The same query reads the columns storing a delivery needs and, on PostgreSQL, the
    partner projects the organization maps (no second query once the body is parsed) and its
    `config_version`; no other secret is read, and the signature secret is decrypted (and
    `secret` compared once more, to the current secret alone) only when `secret` matches.
    """
    meta = Organization._meta
    postgres = connection.vendor == "postgresql"
    sql = _credentials_sql(connection.vendor)
    # An id no organization can have (a NUL, which PostgreSQL refuses; a lone surrogate) is
    # looked up as "", which matches nothing: the same query either way.
    lookup = public_id if _POSSIBLE_ID.fullmatch(public_id) else ""
    with connection.cursor() as cursor:
        cursor.execute(sql, [lookup])
        row = cursor.fetchone()
    decoy_secret, decoy_previous = _decoy_ciphertexts(tuple(settings.FIELD_ENCRYPTION_KEYS))
    current, previous, valid_until, hook_secret = row[:4] if row else ("", "", None, "")
    fields = dict(zip(_ORGANIZATION_FIELDS, row[4:], strict=False)) if row else {}
    version = row[4 + len(_ORGANIZATION_FIELDS)] if row else None
    pk, enabled = fields.get("id"), fields.get("enabled", False)
    # Only the three attributes the selector reads: a model instance would cost more than
    # the decryptions (its every field's default is computed).
    candidate = SimpleNamespace(
        incoming_secret=crypto.decrypt(current or decoy_secret),
        previous_incoming_secrets=crypto.decrypt(previous or decoy_previous),
        previous_secret_valid_until=_aware(valid_until),
    )
    matches = org_selectors.organization_secret_matches(organization=candidate, secret=secret)
    matches = bool(pk is not None and current and secret and matches)
    organization = None
    current_secret = False
    if matches:
        # Which one matched matters only for an accepted secret (`incoming_credentials_remember`).
        current_secret = hmac.compare_digest(
            candidate.incoming_secret.encode("utf-8", "surrogatepass"),
            secret.encode("utf-8", "surrogatepass"),
        )
        fields["last_delivery_at"] = _aware(fields["last_delivery_at"])
        # `from_db` takes the values in the model's field order; the others are deferred.
        loaded = [f for f in meta.concrete_fields if f.name in fields]
        organization = Organization.from_db(
            connection.alias, [f.attname for f in loaded], [fields[f.name] for f in loaded]
        )
    return IncomingCredentials(
        pk=pk,
        matches=matches,
        enabled=bool(enabled),
        bidirectional=fields.get("sync_direction") == SyncDirection.BIDIRECTIONAL,
        signature_secret=crypto.decrypt(hook_secret) if matches and hook_secret else "",
        require_signature=bool(fields.get("require_signature")),
        app_connection=fields.get("connection_type") == ConnectionType.APP,
        organization=organization,
        mapped_projects=frozenset(row[-1] or ()) if matches and postgres else None,
        config_version=version if matches and postgres else None,
        current_secret=current_secret,
    )


# Accepted credentials by a digest of (organization id, secret): only a caller who sends the
# right secret finds one, so an unknown id or a wrong secret always does the full work above.
_ACCEPTED_MAX = 1024
_accepted: dict[bytes, IncomingCredentials] = {}


def _cache_key(public_id: str, secret: str) -> bytes:
    # Length-prefixed, and lone surrogates kept as sent: two different pairs never share a key.
    text = f"{len(public_id)}:{public_id}:{secret}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def incoming_credentials_cached(*, public_id: str, secret: str) -> IncomingCredentials | None:
    """The credentials of a delivery this process accepted with this organization id and its
    current secret, without a query (PostgreSQL only): `cached`, with the organization as
    then read (a copy, this request's own) and its `config_version` then, which the
    delivery's INSERT checks in the same statement. None: authenticate with
    `incoming_credentials`.

    Any change of the organization's settings, its secrets or its project mappings moves
    `config_version` (organizations migrations 0017, 0018), and deleting it removes the row:
    a delivery accepted on stale credentials is then held, never processed, and
    authenticated afresh (`webhooks.views.IncomingWebhookApi`)."""
    if connection.vendor != "postgresql":
        return None
    key = _cache_key(public_id, secret)
    entry = _accepted.get(key)
    if entry is None:
        return None
    return replace(entry, organization=copy.copy(entry.organization), cached=True, cache_key=key)


def incoming_credentials_remember(
    *, public_id: str, secret: str, credentials: IncomingCredentials
) -> None:
    """A delivery was accepted on `credentials`: keep them for the next ones, when read from
    the database with the organization's current secret (a rotated-out one's validity ends
    by time, which no version tells); for cached ones, keep when it last received one
    (`organizations.services.organization_record_delivery` moves it once a second)."""
    organization = credentials.organization
    if organization is None or credentials.config_version is None:
        return
    if credentials.cached:
        entry = _accepted.get(credentials.cache_key)
        if entry is not None and entry.organization is not None:
            entry.organization.last_delivery_at = organization.last_delivery_at
        return
    if not credentials.current_secret or connection.vendor != "postgresql":
        return
    if len(_accepted) >= _ACCEPTED_MAX:
        _accepted.clear()
    _accepted[_cache_key(public_id, secret)] = replace(
        credentials, organization=copy.copy(organization), cached=False, cache_key=b""
    )


def incoming_credentials_forget(credentials: IncomingCredentials | None = None) -> None:
    """Drop cached `credentials` (found stale), or all of them."""
    if credentials is None:
        _accepted.clear()
    else:
        _accepted.pop(credentials.cache_key, None)


def _aware(value: datetime | str | None) -> datetime | None:
    # PostgreSQL hands back aware datetimes; SQLite's raw cursor a naive UTC text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
