from django.urls import path

from . import views

app_name = "connection-messages"

urlpatterns = [
    path(
        "<str:connection_id>/messages/",
        views.ConnectionMessagesApi.as_view(),
        name="messages",
    ),
]
