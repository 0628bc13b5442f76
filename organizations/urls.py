from django.urls import path

from . import api

app_name = "organizations"

urlpatterns = [
    path("organizations/", api.OrganizationListCreateApi.as_view(), name="list"),
    path("organizations/<str:org_id>/", api.OrganizationDetailApi.as_view(), name="detail"),
    path(
        "organizations/<str:org_id>/rotate-secret/",
        api.OrganizationRotateSecretApi.as_view(),
        name="rotate-secret",
    ),
    path(
        "organizations/<str:org_id>/invitation/",
        api.OrganizationInvitationApi.as_view(),
        name="invitation",
    ),
    path(
        "organizations/<str:org_id>/disconnect/",
        api.OrganizationDisconnectApi.as_view(),
        name="disconnect",
    ),
    path(
        "organizations/<str:org_id>/rotate-key/",
        api.OrganizationRotateKeyApi.as_view(),
        name="rotate-key",
    ),
    path(
        "organizations/<str:org_id>/accept-offer/",
        api.OrganizationAcceptOfferApi.as_view(),
        name="accept-offer",
    ),
    path("connections/accept/", api.ConnectionAcceptApi.as_view(), name="connection-accept"),
    path(
        "organizations/<str:org_id>/project-mappings/",
        api.ProjectMappingListCreateApi.as_view(),
        name="project-mappings",
    ),
    path(
        "organizations/<str:org_id>/project-mappings/<int:pk>/",
        api.ProjectMappingDetailApi.as_view(),
        name="project-mapping",
    ),
    path(
        "organizations/<str:org_id>/field-mappings/",
        api.FieldMappingListCreateApi.as_view(),
        name="field-mappings",
    ),
    path(
        "organizations/<str:org_id>/field-mappings/<int:pk>/",
        api.FieldMappingDetailApi.as_view(),
        name="field-mapping",
    ),
]
