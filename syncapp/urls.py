from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from .health import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("organizations.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("webhooks/", include("webhooks.urls")),
    path("healthz", healthz, name="healthz"),
]
