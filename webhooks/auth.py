"""Who may post: the URL secret (looked up with the same work whether the organization exists
or not) and the signature over the raw bytes, both checked before anything is parsed."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
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
    partner projects the organization maps (no second query once the body is parsed); no
    other secret is read, and the signature secret is decrypted only when `secret` matches.
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
    if matches:
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
    )


def _aware(value: datetime | str | None) -> datetime | None:
    # PostgreSQL hands back aware datetimes; SQLite's raw cursor a naive UTC text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
