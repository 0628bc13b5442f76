"""Serializing work on one issue pair across workers, on any database.

A lease is a conditional UPDATE on the IssueLink row: it succeeds only when nobody else holds
an unexpired lease. Each step inside commits on its own (so a "create attempted" mark
survives a crash), and a crashed worker's lease simply runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.rows import instances
from organizations.models import Organization

from .models import IssueLink, Side


class LeaseBusy(Exception):
    """Another worker is working on this issue pair; try again shortly."""


def issue_column(side: str) -> str:
    """The IssueLink column of the issue on `side` (an event's source side)."""
    return "local_issue_id" if side == Side.LOCAL else "remote_issue_id"


def issue_column_sql(*, link: str, local_when: str, issue_id: str) -> str:
    """`issue_column` in SQL: the condition that the link row `link` (a table or an alias)
    holds the issue `issue_id` (an SQL expression) on its local side when `local_when` (an
    SQL condition) holds, else on its partner's side."""
    return (
        f"CASE WHEN {local_when} THEN {link}.{issue_column(Side.LOCAL)} = {issue_id} "
        f"ELSE {link}.{issue_column(Side.REMOTE)} = {issue_id} END"
    )


def _take(where: str, params: list, owner: str) -> IssueLink | None:
    """The lease of the link matching `where`, if free (or run out), with the row itself: one
    `UPDATE ... RETURNING`. None: no such link, or another worker holds it."""
    now = timezone.now()
    rows = instances(
        IssueLink,
        f"UPDATE {IssueLink._meta.db_table} SET lease_owner = %s, lease_until = %s "  # noqa: S608
        f"WHERE {where} AND (lease_until IS NULL OR lease_until < %s) RETURNING *",
        [owner, now + timedelta(seconds=settings.SYNC_LEASE_SECONDS), *params, now],
    )
    return rows[0] if rows else None


def _update_held(pk: int, owner: str, sets: dict) -> int:
    """`UPDATE` the link `pk` while `owner` holds it (the rows changed: 0 or 1). Written as
    SQL: it runs two or three times for every sync, and the ORM would compile each one, at
    more than the cost of running it. `sets`' names are this module's own columns."""
    ops = connection.ops
    values = [
        ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v for v in sets.values()
    ]
    assignments = ", ".join(f"{name} = %s" for name in sets)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {IssueLink._meta.db_table} SET {assignments} "  # noqa: S608
            "WHERE id = %s AND lease_owner = %s",
            [*values, pk, owner],
        )
        return cursor.rowcount


def _release(pk: int, owner: str, **fields) -> None:
    _update_held(pk, owner, {"lease_owner": "", "lease_until": None, **fields})


@contextmanager
def issue_link_lease(link: IssueLink) -> Iterator[IssueLink]:
    """Hold the pair's lease; yields the link as it is now."""
    owner = uuid.uuid4().hex
    held = _take("id = %s", [link.pk], owner)
    if held is None:
        raise LeaseBusy(f"issue link {link.pk} is busy")
    try:
        yield held
    finally:
        _release(held.pk, owner)


@contextmanager
def issue_link_lease_for(
    *, organization: Organization, side: str, issue_id: str, issue_key: str
) -> Iterator[IssueLink]:
    """The lease of an issue's link, the link made first if it has none: the usual case (the
    link exists and is free) is one `UPDATE ... RETURNING` for the lookup and the lease.
    On a normal exit, the release also writes the link's `last_error` (the sync's outcome)."""
    owner = uuid.uuid4().hex
    held = _take(
        f"organization_id = %s AND {issue_column(side)} = %s", [organization.pk, issue_id], owner
    )
    if held is None:
        link = issue_link_get_or_create(
            organization=organization, side=side, issue_id=issue_id, issue_key=issue_key
        )
        held = _take("id = %s", [link.pk], owner)
        if held is None:
            raise LeaseBusy(f"issue link {link.pk} is busy")
    try:
        yield held
    except BaseException:
        _release(held.pk, owner)
        raise
    _release(held.pk, owner, last_error=held.last_error, updated_at=timezone.now())


# A lease with more than this share of SYNC_LEASE_SECONDS left is not renewed before a write.
LEASE_KEPT_SHARE = 0.9


def issue_link_lease_renew(link: IssueLink) -> None:
    """Extend our lease before a write; if another worker has taken the pair, stop here.
    `link` learns the new end (a later full save of it keeps the lease as renewed).

    A lease taken or renewed a moment ago (more than LEASE_KEPT_SHARE of SYNC_LEASE_SECONDS
    left: a sync's first write) is kept as it is, without a round trip: no worker takes a
    pair before its lease runs out (`_take`), so it is still ours, and the write starts with
    nearly the whole lease ahead of it, as a renewed one would."""
    now = timezone.now()
    if link.lease_until is not None and link.lease_until - now > timedelta(
        seconds=settings.SYNC_LEASE_SECONDS * LEASE_KEPT_SHARE
    ):
        return
    until = now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    if not _update_held(link.pk, link.lease_owner, {"lease_until": until}):
        raise LeaseBusy(f"issue link {link.pk}: lease lost to another worker")
    link.lease_until = until


def issue_link_get_or_create(
    *, organization: Organization, side: str, issue_id: str, issue_key: str
) -> IssueLink:
    """The one link of an issue; concurrent callers get the same row (unique constraint)."""
    lookup = {"local_issue_id": issue_id} if side == Side.LOCAL else {"remote_issue_id": issue_id}
    key_field = "local_issue_key" if side == Side.LOCAL else "remote_issue_key"
    link = IssueLink.objects.filter(organization=organization, **lookup).first()
    if link is not None:
        return link
    try:
        with transaction.atomic():
            return IssueLink.objects.create(
                organization=organization, origin=side, **lookup, **{key_field: issue_key}
            )
    except IntegrityError:
        return IssueLink.objects.get(organization=organization, **lookup)
