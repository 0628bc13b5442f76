"""Template helpers of the operator's pages; the organization page's activity panel.

The panel is a template tag so that `organizations` (configuration) need not import the sync
engine's models: the admin template asks ops for it by name.
"""

from django import template
from django.urls import reverse

from ops import selectors

register = template.Library()


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)


@register.inclusion_tag("admin/organizations/organization/activity.html")
def organization_activity(organization) -> dict:
    return {
        "activity": selectors.organization_activity(organization=organization),
        "activity_url": reverse("admin:sync_syncevent_changelist")
        + f"?organization__id__exact={organization.pk}",
    }
