"""Serializing work on one issue pair across workers, on any database.

A lease is a conditional UPDATE on the IssueLink row: it succeeds only when nobody else holds
an unexpired lease. Each step inside commits on its own (so a "create attempted" mark
survives a crash), and a crashed worker's lease simply runs out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from organizations.models import Organization

from .models import IssueLink, Side


class LeaseBusy(Exception):
    """Another worker is working on this issue pair; try again shortly."""


@contextmanager
def issue_link_lease(link: IssueLink) -> Iterator[IssueLink]:
    owner = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        IssueLink.objects.filter(pk=link.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_owner=owner, lease_until=now + timedelta(seconds=settings.SYNC_LEASE_SECONDS))
    )
    if not taken:
        raise LeaseBusy(f"issue link {link.pk} is busy")
    try:
        yield IssueLink.objects.get(pk=link.pk)
    finally:
        IssueLink.objects.filter(pk=link.pk, lease_owner=owner).update(
            lease_owner="", lease_until=None
        )


def issue_link_lease_renew(link: IssueLink) -> None:
    """Extend our lease before a write; if another worker has taken the pair, stop here."""
    now = timezone.now()
    kept = IssueLink.objects.filter(pk=link.pk, lease_owner=link.lease_owner).update(
        lease_until=now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    )
    if not kept:
        raise LeaseBusy(f"issue link {link.pk}: lease lost to another worker")


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
