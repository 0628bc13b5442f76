"""The config API: thin views that parse input, call one service and shape output."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.permissions import IsStaffWithModelPermissions

from . import connections, selectors, services
from .models import FieldMapping, Organization, ProjectMapping
from .serializers import (
    ConnectionAcceptInputSerializer,
    FieldMappingSerializer,
    OrganizationInputSerializer,
    OrganizationOutputSerializer,
    ProjectMappingSerializer,
)


def _parse(serializer_class, request, *, partial: bool = False, **context):
    serializer = serializer_class(data=request.data, partial=partial, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer


class OrganizationBaseApi(GenericAPIView):
    queryset = Organization.objects.all()
    serializer_class = OrganizationOutputSerializer

    def get_organization(self) -> Organization:
        organization = get_object_or_404(Organization, public_id=self.kwargs["org_id"])
        self.check_object_permissions(self.request, organization)
        return organization

    def detail(self, organization: Organization, code: int = status.HTTP_200_OK) -> Response:
        # The incoming secret only for users who may change organizations.
        show = self.request.user.has_perm("organizations.change_organization")
        serializer = OrganizationOutputSerializer(organization, context={"show_secrets": show})
        return Response(serializer.data, status=code)


class OrganizationListCreateApi(OrganizationBaseApi):
    """List organizations (without secrets) or create one."""

    def get(self, request):
        organizations = selectors.organization_list().prefetch_related(
            "project_mappings", "field_mappings"
        )
        return Response(OrganizationOutputSerializer(organizations, many=True).data)

    @extend_schema(request=OrganizationInputSerializer)
    def post(self, request):
        serializer = _parse(OrganizationInputSerializer, request)
        data = dict(serializer.validated_data)
        name = data.pop("name")
        organization = services.organization_create(name=name, **data)
        return self.detail(organization, status.HTTP_201_CREATED)


class OrganizationDetailApi(OrganizationBaseApi):
    """Read (with secrets), partially update or delete one organization."""

    def get(self, request, org_id):
        return self.detail(self.get_organization())

    @extend_schema(request=OrganizationInputSerializer)
    def patch(self, request, org_id):
        organization = self.get_organization()
        serializer = _parse(OrganizationInputSerializer, request, partial=True)
        organization = services.organization_update(
            organization=organization, data=dict(serializer.validated_data)
        )
        return self.detail(organization)

    def delete(self, request, org_id):
        services.organization_delete(organization=self.get_organization())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChangePermissionForPost(IsStaffWithModelPermissions):
    """POST here changes an existing object: it needs change permission, not add."""

    perms_map = {
        **IsStaffWithModelPermissions.perms_map,
        "POST": ["%(app_label)s.change_%(model_name)s"],
    }


class OrganizationRotateSecretApi(OrganizationBaseApi):
    """A new incoming secret; the previous one stays valid for the grace period."""

    permission_classes = (ChangePermissionForPost,)

    @extend_schema(request=None)
    def post(self, request, org_id):
        organization = services.organization_rotate_secret(organization=self.get_organization())
        return self.detail(organization)


class MappingBaseApi(GenericAPIView):
    """Project or field mappings of one organization (set `queryset`, `serializer_class`)."""

    create_service = None
    update_service = None

    def get_organization(self) -> Organization:
        return get_object_or_404(Organization, public_id=self.kwargs["org_id"])

    def get_queryset(self):
        return self.queryset.filter(organization__public_id=self.kwargs["org_id"])


class MappingListCreateApi(MappingBaseApi):
    def get(self, request, org_id):
        organization = self.get_organization()
        mappings = self.get_queryset().filter(organization=organization)
        return Response(self.serializer_class(mappings, many=True).data)

    def post(self, request, org_id):
        organization = self.get_organization()
        serializer = _parse(self.serializer_class, request)
        mapping = type(self).create_service(organization=organization, **serializer.validated_data)
        return Response(self.serializer_class(mapping).data, status=status.HTTP_201_CREATED)


class MappingDetailApi(MappingBaseApi):
    def get(self, request, org_id, pk):
        return Response(self.serializer_class(self.get_object()).data)

    def patch(self, request, org_id, pk):
        mapping = self.get_object()
        serializer = _parse(self.serializer_class, request, partial=True)
        mapping = type(self).update_service(mapping=mapping, data=dict(serializer.validated_data))
        return Response(self.serializer_class(mapping).data)

    def delete(self, request, org_id, pk):
        type(self).delete_service(mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectMappingListCreateApi(MappingListCreateApi):
    queryset = ProjectMapping.objects.all()
    serializer_class = ProjectMappingSerializer
    create_service = services.project_mapping_create


class ProjectMappingDetailApi(MappingDetailApi):
    queryset = ProjectMapping.objects.all()
    serializer_class = ProjectMappingSerializer
    update_service = services.project_mapping_update
    delete_service = services.project_mapping_delete


class FieldMappingListCreateApi(MappingListCreateApi):
    queryset = FieldMapping.objects.all()
    serializer_class = FieldMappingSerializer
    create_service = services.field_mapping_create


class FieldMappingDetailApi(MappingDetailApi):
    queryset = FieldMapping.objects.all()
    serializer_class = FieldMappingSerializer
    update_service = services.field_mapping_update
    delete_service = services.field_mapping_delete


class ConnectionBaseApi(OrganizationBaseApi):
    """Scenario B's endpoints: a refused handshake step answers its status and reason here,
    once, instead of in every view."""

    def handle_exception(self, exc):
        if isinstance(exc, connections.ConnectionRefused):
            return Response({"detail": str(exc)}, status=exc.status)
        return super().handle_exception(exc)


class OrganizationInvitationApi(ConnectionBaseApi):
    """Scenario B: a connection invitation for the partner's install to paste."""

    permission_classes = (ChangePermissionForPost,)

    @extend_schema(request=None)
    def post(self, request, org_id):
        text, expires_at = connections.invitation_create(organization=self.get_organization())
        return Response(
            {"invitation": text, "expiresAt": expires_at.isoformat()},
            status=status.HTTP_201_CREATED,
        )


class OrganizationDisconnectApi(ConnectionBaseApi):
    """Scenario B: disconnect from the partner's install (both sides show it)."""

    permission_classes = (ChangePermissionForPost,)

    @extend_schema(request=None)
    def post(self, request, org_id):
        organization = connections.organization_disconnect(organization=self.get_organization())
        return self.detail(organization)


class OrganizationRotateKeyApi(ConnectionBaseApi):
    """Scenario B: a new signing key, announced to the partner signed by the old one."""

    permission_classes = (ChangePermissionForPost,)

    @extend_schema(request=None)
    def post(self, request, org_id):
        connections.connection_rotate_key(organization=self.get_organization())
        return self.detail(self.get_organization())


class OrganizationAcceptOfferApi(ConnectionBaseApi):
    """Scenario B: accept what the partner now sends (its last announcement)."""

    permission_classes = (ChangePermissionForPost,)

    @extend_schema(request=None)
    def post(self, request, org_id):
        connections.connection_offer_accept(organization=self.get_organization())
        return self.detail(self.get_organization())


class ConnectionAcceptApi(ConnectionBaseApi):
    """Scenario B: accept a partner install's invitation; 201 with the new organization."""

    @extend_schema(request=ConnectionAcceptInputSerializer)
    def post(self, request):
        data = _parse(ConnectionAcceptInputSerializer, request).validated_data
        organization = connections.invitation_accept(
            invitation=data["invitation"],
            name=data["name"],
            project_mappings=data["projectMappings"],
            sync_direction=data["syncDirection"],
        )
        return self.detail(organization, status.HTTP_201_CREATED)
