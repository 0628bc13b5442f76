from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import (
    AttachmentLink,
    CommentLink,
    Drift,
    IssueLink,
    RelationLink,
    SyncEvent,
    UnmappedUser,
)
from .relations import relation_link_retry


def _issue_link(base_url: str, key: str):
    if not key:
        return "—"
    if not base_url:
        return key
    return format_html('<a href="{}/browse/{}" target="_blank">{}</a>', base_url, key, key)


class CommentLinkInline(admin.TabularInline):
    model = CommentLink
    extra = 0
    can_delete = False
    fields = ("local_comment_id", "remote_comment_id", "origin", "updated_at")
    readonly_fields = fields


class AttachmentLinkInline(admin.TabularInline):
    """Each attachment pair, and the files refused (too large, excluded) with why."""

    model = AttachmentLink
    extra = 0
    can_delete = False
    fields = (
        "filename",
        "local_attachment_id",
        "remote_attachment_id",
        "origin",
        "size",
        "status",
        "reason",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AttachmentLink)
class AttachmentLinkAdmin(admin.ModelAdmin):
    """Attachments copied and refused, across issue pairs (filter: refused)."""

    list_display = ("filename", "issue_link", "origin", "size", "status", "reason", "updated_at")
    list_filter = ("status", "origin", "issue_link__organization")
    search_fields = ("filename", "issue_link__local_issue_key", "issue_link__remote_issue_key")
    readonly_fields = (
        "issue_link",
        "filename",
        "local_attachment_id",
        "remote_attachment_id",
        "origin",
        "size",
        "sha256",
        "status",
        "reason",
        "upload_started_at",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(IssueLink)
class IssueLinkAdmin(admin.ModelAdmin):
    list_display = (
        "organization",
        "local_issue",
        "remote_issue",
        "status",
        "origin",
        "updated_at",
        "last_error",
    )
    list_filter = ("organization", "status", "origin")
    search_fields = ("local_issue_key", "remote_issue_key", "local_issue_id", "remote_issue_id")
    readonly_fields = (
        "organization",
        "local_issue",
        "remote_issue",
        "local_issue_id",
        "remote_issue_id",
        "origin",
        "status",
        "create_started_at",
        "state",
        "lease_until",
        "last_error",
        "created_at",
        "updated_at",
    )
    exclude = ("local_issue_key", "remote_issue_key", "lease_owner")
    inlines = (CommentLinkInline, AttachmentLinkInline)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("local issue"), ordering="local_issue_key")
    def local_issue(self, obj: IssueLink):
        return _issue_link(settings.LOCAL_JIRA_URL.rstrip("/"), obj.local_issue_key)

    @admin.display(description=_("partner issue"), ordering="remote_issue_key")
    def remote_issue(self, obj: IssueLink):
        return _issue_link(obj.organization.remote_base_url.rstrip("/"), obj.remote_issue_key)


@admin.register(SyncEvent)
class SyncEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "organization",
        "direction",
        "action",
        "issue_link",
        "fields",
        "result",
        "calls",
        "latency_ms",
    )
    list_filter = ("organization", "direction", "result", "action")
    readonly_fields = [f.name for f in SyncEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UnmappedUser)
class UnmappedUserAdmin(admin.ModelAdmin):
    """Users met with no counterpart: map them in the organization's user map."""

    list_display = (
        "organization",
        "side",
        "display_name",
        "user_id",
        "email",
        "field",
        "count",
        "first_seen",
        "last_seen",
    )
    list_filter = ("organization", "side")
    search_fields = ("display_name", "user_id", "email")
    readonly_fields = [f.name for f in UnmappedUser._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Drift)
class DriftAdmin(admin.ModelAdmin):
    """What the last drift checks found (repaired from the sync dashboard)."""

    list_display = ("organization", "issue_link", "kind", "field", "checked_at", "found_at")
    list_filter = ("organization", "kind")
    search_fields = ("field", "issue_link__local_issue_key", "issue_link__remote_issue_key")
    readonly_fields = [f.name for f in Drift._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RelationLink)
class RelationLinkAdmin(admin.ModelAdmin):
    """Issue links between synced issues and their copies (read-only: the sync keeps them)."""

    list_display = (
        "organization",
        "outward_pair",
        "inward_pair",
        "local_type",
        "remote_type",
        "local_link_id",
        "remote_link_id",
        "origin",
        "status",
        "updated_at",
    )
    list_filter = ("organization", "status", "origin")
    search_fields = ("local_link_id", "remote_link_id", "local_type", "remote_type")
    readonly_fields = list_display + ("created_at",)
    actions = ("retry_action",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("sync.delete_relationlink")

    @admin.action(
        description=_("Try again (the link type now exists, or the map names another)"),
        permissions=("retry",),
    )
    def retry_action(self, request, queryset):
        done = sum(relation_link_retry(relation=relation) for relation in queryset)
        self.message_user(
            request,
            _("%(n)d link(s) will be tried again at the next sync of their issues.") % {"n": done},
            messages.SUCCESS,
        )
