"""The operator's dashboard (in the admin) and its JSON twin for monitoring."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from rest_framework.response import Response
from rest_framework.views import APIView

from ops import selectors
from ops.permissions import STATUS_PERMISSIONS, CanViewSyncStatus, may_see
from organizations.models import Organization
from sync.models import IssueLink
from sync.tasks import drift_repair_task
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery

CHART_COLORS = {
    "done": "#44aa66",
    "echo": "#8ab4f8",
    "ignored": "#bbbbbb",
    "pending": "#f0c040",
    "processing": "#f09040",
    "failed": "#e06040",
    "dead": "#a01010",
}


def _chart(series: list[dict], width: int = 720, height: int = 120) -> dict:
    """Stacked bars per hour, drawn server-side as SVG rectangles."""
    top = max((sum(p["counts"].values()) for p in series), default=0) or 1
    bar = width / max(len(series), 1)
    bars = []
    for i, point in enumerate(series):
        y = height
        for status, color in CHART_COLORS.items():
            n = point["counts"].get(status, 0)
            if not n:
                continue
            h = n / top * (height - 10)
            y -= h
            bars.append(
                {
                    "x": round(i * bar + 1, 1),
                    "y": round(y, 1),
                    "w": round(bar - 2, 1),
                    "h": round(h, 1),
                    "color": color,
                    "title": f"{point['hour']:%H:00} {status}: {n}",
                }
            )
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "top": top,
        "legend": CHART_COLORS.items(),
    }


@staff_member_required
def dashboard_view(request):
    if not may_see(request.user, STATUS_PERMISSIONS):
        raise PermissionDenied
    organization = None
    if request.GET.get("org"):
        organization = get_object_or_404(Organization, public_id=request.GET["org"])
    status = selectors.sync_status(organization=organization)
    context = {
        **admin.site.each_context(request),
        "title": "Sync dashboard" + (f": {organization.name}" if organization else ""),
        "organization": organization,
        "status": status,
        "chart": _chart(status["series"]),
        "can_retry": request.user.has_perm("webhooks.change_webhookdelivery"),
        "can_repair": request.user.has_perm(REPAIR_PERMISSION),
    }
    return TemplateResponse(request, "admin/sync_dashboard.html", context)


@staff_member_required
@require_POST
def dashboard_retry_view(request, delivery_id: int):
    if not request.user.has_perm("webhooks.change_webhookdelivery"):
        messages.error(request, "You may not retry deliveries.")
    else:
        webhook_services.delivery_retry(deliveries=WebhookDelivery.objects.filter(pk=delivery_id))
        messages.success(request, f"Delivery {delivery_id} sent again.")
    return HttpResponseRedirect(_same_site_path(request, request.POST.get("next", "")))


# Repairing drift writes to both Jira sites through the sync: staff who may change links.
REPAIR_PERMISSION = "sync.change_issuelink"


@staff_member_required
@require_POST
def dashboard_drift_repair_view(request):
    """Repair one pair (`link`), one organization's drift (`org`) or everyone's (`all`):
    queued for a worker, which brings each pair equal through the sync (sync/drift.py)."""
    if not request.user.has_perm(REPAIR_PERMISSION):
        raise PermissionDenied
    if request.POST.get("link"):
        link = get_object_or_404(IssueLink, pk=_int(request.POST["link"]))
        kwargs, what = {"link_id": link.pk}, f"the pair {link}"
    elif request.POST.get("org"):
        organization = get_object_or_404(Organization, public_id=request.POST["org"])
        kwargs, what = {"organization_id": organization.pk}, f"{organization.name}'s drift"
    elif request.POST.get("all"):
        kwargs, what = {}, "every organization's drift"
    else:
        messages.error(request, "Nothing to repair was named.")
        return HttpResponseRedirect(_same_site_path(request, request.POST.get("next", "")))
    transaction.on_commit(lambda: drift_repair_task.delay(**kwargs))
    messages.success(request, f"Repair of {what} queued.")
    return HttpResponseRedirect(_same_site_path(request, request.POST.get("next", "")))


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _same_site_path(request, url: str) -> str:
    """`url` if it is a relative path on this site, else the dashboard (no open redirect)."""
    relative = url.startswith("/") and not url.startswith(("//", "/\\"))
    if relative and url_has_allowed_host_and_scheme(
        url, allowed_hosts=set(), require_https=request.is_secure()
    ):
        return url
    return reverse("sync-dashboard")


class SyncStatusApi(APIView):
    """`GET /api/status/`: the dashboard's figures as JSON (staff; token auth for monitors)."""

    permission_classes = (CanViewSyncStatus,)

    def get(self, request):
        organization = None
        if request.query_params.get("org"):
            organization = get_object_or_404(Organization, public_id=request.query_params["org"])
        status = selectors.sync_status(organization=organization)
        return Response(selectors.sync_status_json(status))
