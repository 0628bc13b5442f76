"""Celery tasks of reconciliation: beat's periodic run enqueues one catch-up per
organization; each is thin (an id in, the service does the work)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from organizations.models import Organization

from .reconcile import reconcile_catch_up


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
