from rest_framework.permissions import DjangoModelPermissions


class IsStaffWithModelPermissions(DjangoModelPermissions):
    """Staff only, and each method needs the matching model permission (view/add/change/delete)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        return super().has_permission(request, view)
