"""Reconciliation's drift check and repair, as Celery tasks (thin: `drift.py` does the work).

The check runs on beat (`SYNC_DRIFT_CHECK_SECONDS`), never on the webhook path; one run at
a time (a cache lock), so a check longer than the period is not started twice.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from organizations.models import Organization

from .drift import drift_check_all, drift_repair
from .models import IssueLink

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
