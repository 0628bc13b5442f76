from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("incoming/<str:org_id>/", views.IncomingWebhookApi.as_view(), name="incoming"),
]
