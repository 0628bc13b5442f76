from django.urls import path

from . import public_views

app_name = "connections"

urlpatterns = [
    path(
        "<str:connection_id>/handshake/",
        public_views.ConnectionHandshakeView.as_view(),
        name="handshake",
    ),
]
