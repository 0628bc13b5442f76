"""Who may see the operator's pages: staff with view permission on the models they show."""

from rest_framework.permissions import BasePermission

# The dashboard and /api/status/ show deliveries, sync events and organizations.
STATUS_PERMISSIONS = (
    "organizations.view_organization",
    "webhooks.view_webhookdelivery",
    "sync.view_syncevent",
)
# The OpenAPI schema describes the configuration API (organizations and their mappings).
SCHEMA_PERMISSIONS = ("organizations.view_organization",)


def may_see(user, perms: tuple[str, ...]) -> bool:
    return bool(user and user.is_authenticated and user.is_staff and user.has_perms(perms))


class CanViewSyncStatus(BasePermission):
    def has_permission(self, request, view) -> bool:
        return may_see(request.user, STATUS_PERMISSIONS)


class CanViewApiSchema(BasePermission):
    def has_permission(self, request, view) -> bool:
        return may_see(request.user, SCHEMA_PERMISSIONS)
