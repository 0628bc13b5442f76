from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("local/", views.LocalWebhookApi.as_view(), name="local"),
    path("incoming/<str:org_id>/", views.IncomingWebhookApi.as_view(), name="incoming"),
]
