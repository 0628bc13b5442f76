"""Reads on organizations."""

import contextvars
import copy
import functools
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from .models import Connection, ConnectionType, Organization, ProjectMapping


def organization_list() -> QuerySet[Organization]:
    return Organization.objects.all()


# An organization's configuration stamp, as SQL over its table (`{table}`, named in full:
# SQLite's RETURNING sees no alias in a subquery): its config_version, which every change of
# its settings, project mappings and field mappings moves (database triggers, migrations 0017
# and 0018; `last_delivery_at` aside), and its creation time (an id SQLite gives again after a
# delete names another organization). Read with the row that names the organization.
ORGANIZATION_STAMP_SQL = (
    "CAST({table}.config_version AS TEXT) || ' ' || CAST({table}.created_at AS TEXT)"
)

# This process's organizations, by id: (stamp, the row read at or after that stamp).
_KEPT: dict[int, tuple[str, Organization]] = {}


def organization_at_stamp(*, pk: int, stamp: str) -> Organization:
    """The organization as of `stamp` (ORGANIZATION_STAMP_SQL, read just now): this
    process's copy while the stamp is unchanged, else read again. The caller gets a copy
    of its own (callers set attributes on it)."""
    kept = _KEPT.get(pk)
    if kept is None or kept[0] != stamp:
        kept = _KEPT[pk] = (stamp, Organization.objects.get(pk=pk))
    return copy.copy(kept[1])


@functools.cache
def _stamps_mapping_sql() -> str:
    orgs, maps = Organization._meta.db_table, ProjectMapping._meta.db_table
    return (
        f"SELECT DISTINCT {orgs}.id, {ORGANIZATION_STAMP_SQL.format(table=orgs)}, {orgs}.name "  # noqa: S608
        f"FROM {orgs} INNER JOIN {maps} ON {orgs}.id = {maps}.organization_id "
        f"WHERE {orgs}.enabled = %s "
        # Served: by its partner's Jira (Scenario A) or by its partner's install (B).
        f"AND NOT ({orgs}.remote_base_url = '' AND {orgs}.connection_type <> %s) "
        f"AND {maps}.local_project_key = %s ORDER BY {orgs}.name"
    )


# Inside `stamps_read_once`: the answers of `organization_stamps_mapping`, by project key.
_STAMPS_READ: contextvars.ContextVar[dict[str, list[tuple[int, str]]] | None] = (
    contextvars.ContextVar("stamps_read", default=None)
)


@contextmanager
def stamps_read_once() -> Iterator[None]:
    """Within: `organization_stamps_mapping` reads each project's organizations once. For
    deliveries processed together that were all received before it began (a worker's batch
    of one issue): the configuration as of the first of them serves them all."""
    token = _STAMPS_READ.set({})
    try:
        yield
    finally:
        _STAMPS_READ.reset(token)


def organization_stamps_mapping(*, local_project_key: str) -> list[tuple[int, str]]:
    """(id, stamp) of every enabled organization that is served (a partner's Jira, or its
    install) and maps our project `local_project_key`, by name: for each of our Jira's
    deliveries. One statement written once: the ORM would build and compile it for every
    delivery, at several times the cost of running it."""
    read = _STAMPS_READ.get()
    if read is not None and local_project_key in read:
        return read[local_project_key]
    with connection.cursor() as cursor:
        cursor.execute(_stamps_mapping_sql(), [True, ConnectionType.APP, local_project_key])
        stamps = [(pk, stamp) for pk, stamp, _name in cursor.fetchall()]
    if read is not None:
        read[local_project_key] = stamps
    return stamps


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def organization_previous_secrets(*, organization: Organization) -> list[tuple[str, datetime]]:
    """The rotated-out incoming secrets with the end of each one's grace period (expired
    ones included; see organization_secret_matches)."""
    if not organization.previous_incoming_secrets:
        return []
    return [
        (entry["secret"], datetime.fromisoformat(entry["validUntil"]))
        for entry in json.loads(organization.previous_incoming_secrets)
    ]


def organization_secret_matches(*, organization: Organization, secret: str) -> bool:
    """The current incoming secret, or a previous one inside its own grace period (and
    before `previous_secret_valid_until`, which ends them all).

    Constant-time comparisons, and every stored secret is compared so timing tells nothing
    of which one matched.
    """
    now = timezone.now()
    matched = bool(organization.incoming_secret) and _same(organization.incoming_secret, secret)
    all_until = organization.previous_secret_valid_until
    for previous, valid_until in organization_previous_secrets(organization=organization):
        in_grace = all_until is not None and now < all_until and now < valid_until
        matched = (_same(previous, secret) and in_grace) or matched
    return matched


def organization_partner_jql(*, organization: Organization) -> str:
    """The JQL the partner's admin puts on their webhook: only the mapped partner projects."""
    keys = sorted(organization.project_mappings.values_list("remote_project_key", flat=True))
    if not keys:
        return 'project = "YOUR_PROJECT_KEY"'
    if len(keys) == 1:
        return f'project = "{keys[0]}"'
    return "project in ({})".format(", ".join(f'"{k}"' for k in keys))


def organization_offers(*, organization: Organization) -> dict | None:
    """Scenario B: what we send and what the partner sends, each in effect and as last
    announced (a difference is a change awaiting the other side's acceptance)."""
    connection = Connection.objects.filter(organization=organization).first()
    if connection is None:
        return None

    def side(in_effect: dict, announced: dict) -> dict:
        def lists(offer: dict) -> dict:
            return {k: offer.get(k) for k in ("projects", "fields") if k in offer}

        now, next_ = lists(in_effect), lists(announced)
        return {
            "in_effect": now,
            "announced": next_,
            "pending": bool(announced) and now != next_,
            "added": {k: sorted(set(next_.get(k) or ()) - set(now.get(k) or ())) for k in next_},
        }

    return {
        "we_send": side(connection.offer_out_accepted, connection.offer_out),
        "they_send": side(connection.offer_in_accepted, connection.offer_in),
    }


def organization_connection(*, organization: Organization) -> Connection | None:
    """Scenario B: the organization's connection to the partner's install, if it has one."""
    return Connection.objects.filter(organization=organization).first()
