import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import services
from .models import DeliveryStatus, WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "received_at",
        "source",
        "organization",
        "event_type",
        "issue_key",
        "status",
        "attempts",
        "calls",
        "short_error",
    )
    list_filter = ("status", "source", "event_type", "organization")
    search_fields = ("issue_key", "issue_id", "dedupe_key")
    date_hierarchy = "received_at"
    actions = ("retry_action",)
    readonly_fields = (
        "source",
        "organization",
        "dedupe_key",
        "event_type",
        "issue_id",
        "issue_key",
        "status",
        "attempts",
        "calls",
        "last_error",
        "received_at",
        "updated_at",
        "headers",
        "pretty_body",
    )
    exclude = ("body",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.display(description=_("last error"))
    def short_error(self, obj: WebhookDelivery) -> str:
        return (obj.last_error[:120] + "…") if len(obj.last_error) > 120 else obj.last_error

    @admin.display(description=_("body"))
    def pretty_body(self, obj: WebhookDelivery) -> str:
        try:
            text = json.dumps(json.loads(obj.body), indent=2)[:20000]
        except ValueError:
            text = obj.body[:20000]
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text)

    @admin.action(description=_("Retry the selected deliveries"), permissions=("retry",))
    def retry_action(self, request, queryset):
        count = services.delivery_retry(deliveries=queryset.exclude(status=DeliveryStatus.DONE))
        self.message_user(
            request, _("%(n)d deliveries sent again.") % {"n": count}, messages.SUCCESS
        )
