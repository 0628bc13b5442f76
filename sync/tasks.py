"""Reconciliation's drift check and repair, as Celery tasks (thin: `drift.py` does the work).

The check runs on beat (`SYNC_DRIFT_CHECK_SECONDS`), never on the webhook path; one run at
a time (a cache lock), so a check longer than the period is not started twice.

Catch-up (`reconcile.py`): beat's periodic run enqueues one catch-up per organization.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from organizations.models import Organization

from .drift import drift_check_all, drift_repair
from .models import IssueLink
from .reconcile import reconcile_catch_up

CHECK_LOCK = "sync:drift-check:running"


@shared_task(name="sync.drift_check", ignore_result=True)
def drift_check_task() -> int:
    if not cache.add(CHECK_LOCK, "1", timeout=int(settings.SYNC_DRIFT_CHECK_SECONDS) or 3600):
        return 0  # the previous check is still running
    try:
        return len(drift_check_all())
    finally:
        cache.delete(CHECK_LOCK)


@shared_task(name="sync.drift_repair", ignore_result=True)
def drift_repair_task(*, link_id: int | None = None, organization_id: int | None = None) -> int:
    """Repair one pair (`link_id`), one organization's drift, or everyone's (neither)."""
    if link_id is not None:
        links = IssueLink.objects.select_related("organization").filter(pk=link_id)
        return len(drift_repair(links=links))
    organization = None
    if organization_id is not None:
        organization = Organization.objects.filter(pk=organization_id).first()
        if organization is None:
            return 0
    return len(drift_repair(organization=organization))


@shared_task(name="sync.reconcile_all", ignore_result=True)
def reconcile_all_task() -> int:
    """Beat, every SYNC_RECONCILE_SECONDS: one catch-up task per enabled organization."""
    ids = list(
        Organization.objects.filter(enabled=True, project_mappings__isnull=False)
        .distinct()
        .values_list("pk", flat=True)
    )
    for organization_id in ids:
        reconcile_organization_task.delay(organization_id)
    return len(ids)


@shared_task(name="sync.reconcile_organization", ignore_result=True)
def reconcile_organization_task(organization_id: int) -> None:
    """One organization's catch-up; a run still going (a slow site) is not doubled."""
    organization = Organization.objects.filter(pk=organization_id, enabled=True).first()
    if organization is None:
        return
    key = f"sync.reconcile:{organization_id}"
    hold = max(60.0, settings.SYNC_RECONCILE_SECONDS * 4)
    if not cache.add(key, 1, timeout=hold):
        return
    try:
        reconcile_catch_up(organization=organization)
    finally:
        cache.delete(key)
