from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from ops import dashboard
from ops.health import healthz
from ops.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/dashboard/", dashboard.dashboard_view, name="sync-dashboard"),
    path(
        "admin/dashboard/retry/<int:delivery_id>/",
        dashboard.dashboard_retry_view,
        name="sync-dashboard-retry",
    ),
    path(
        "admin/dashboard/drift/repair/",
        dashboard.dashboard_drift_repair_view,
        name="sync-dashboard-drift-repair",
    ),
    path("admin/", admin.site.urls),
    path("api/status/", dashboard.SyncStatusApi.as_view(), name="sync-status"),
    path("api/", include("organizations.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("webhooks/", include("webhooks.urls")),
    path("connections/", include("organizations.connection_urls")),
    path("connections/", include("webhooks.connection_urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]

if settings.BENCH_ENDPOINTS:
    from devtools.benchviews import baseline_insert

    urlpatterns.append(path("bench/baseline/", baseline_insert, name="bench-baseline"))
