import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from jiraapi.events import WEBHOOK_EVENTS

from . import connections, selectors, services
from .models import (
    ConnectionType,
    FieldMapping,
    HandshakeStatus,
    Organization,
    ProjectMapping,
    SyncDirection,
)

SECRET_FORM_FIELDS = ("remote_token", "remote_handshake_token")
# Scenario A's fields, not shown for an organization connected app to app (Scenario B).
APP_HIDDEN_FIELDS = (
    "remote_base_url",
    "remote_flavor",
    "remote_user",
    "remote_token",
    "remote_token_state",
    "remote_token_expires_at",
    "credentials_state",
    "remote_handshake_token",
    "remote_handshake_token_state",
    "require_signature",
    "secret_rotated_at",
    "previous_secret_valid_until",
    "handshake_status",  # the connection panel says it, in the words of an app connection
    "handshake_activated_at",
)

# The handshake of an app connection says what it waits for (the model's labels speak of
# the partner's Jira webhook, Scenario A).
APP_HANDSHAKE_LABELS = {
    HandshakeStatus.PENDING: _("Pending: waiting for the partner install to accept and say hello"),
    HandshakeStatus.ACTIVE: _("Active: both installs verified each other's signed hello"),
    HandshakeStatus.DISCONNECTED: _("Disconnected: messages from the partner are refused"),
}


def handshake_label(organization: Organization) -> str:
    """The handshake status in the words of the organization's kind of connection."""
    if organization.connection_type == ConnectionType.APP:
        label = APP_HANDSHAKE_LABELS.get(organization.handshake_status)
        if label:
            return label
    return organization.get_handshake_status_display()


# The events the partner ticks on their webhook.
# (group, what, event) as Jira's webhook form shows them, e.g. "Issue", "created".
_EVENT_GROUPS = {"comment": "Comment", "worklog": "Worklog", "issuelink": "Issue link"}
PARTNER_WEBHOOK_EVENTS = tuple(
    (
        _EVENT_GROUPS.get(event.rsplit("_", 1)[0], "Issue"),
        event.rsplit("_", 1)[-1],
        event,
    )
    for event in WEBHOOK_EVENTS
)


class OrganizationForm(forms.ModelForm):
    """Stored secrets are never sent to the browser: an empty secret field keeps the value."""

    remote_base_url = forms.URLField(
        label=_("Partner Jira URL"), required=False, assume_scheme="https"
    )
    remote_token = forms.CharField(
        label=_("Partner Jira API token / PAT"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only. Leave empty to keep the stored token."),
    )
    remote_handshake_token = forms.CharField(
        label=_("Partner webhook secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Write-only. The secret the partner's admin set on their Jira webhook, used to "
            "check X-Hub-Signature. Leave empty to keep the stored value."
        ),
    )

    class Meta:
        model = Organization
        fields = services.ORGANIZATION_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Forms posted without the people settings (older scripts) keep what is stored.
        for name in ("user_map", "unmapped_user_policy", "attachment_max_bytes"):
            if name in self.fields:
                self.fields[name].required = False

    def clean_attachment_max_bytes(self):
        value = self.cleaned_data.get("attachment_max_bytes")
        return self.instance.attachment_max_bytes if value is None else value

    def clean_user_map(self):
        return self.cleaned_data.get("user_map") or {}

    def clean_unmapped_user_policy(self):
        return self.cleaned_data.get("unmapped_user_policy") or self.instance.unmapped_user_policy

    def service_data(self) -> dict:
        """The changed fields for the organization services; an empty secret means "keep"."""
        return {
            name: self.cleaned_data[name]
            for name in self.changed_data
            if name in self.Meta.fields
            and not (name in SECRET_FORM_FIELDS and not self.cleaned_data[name])
        }


class AcceptInvitationForm(forms.Form):
    """Scenario B: paste the partner install's invitation and choose what maps to what."""

    invitation = forms.CharField(
        label=_("Invitation"),
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "cols": 80,
                "style": "font-family: monospace; word-break: break-all",
                "spellcheck": "false",
                "autocomplete": "off",
            }
        ),
        max_length=16_384,
        help_text=_(
            "The text the partner's admin copied from their install (one line). What it "
            "offers is shown below it once pasted."
        ),
    )
    name = forms.CharField(
        label=_("Name of the partner"),
        max_length=200,
        help_text=_("How the partner appears in your admin, e.g. their company's name."),
    )
    project_mappings = forms.CharField(
        label=_("Project mappings"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40, "placeholder": "OPS = LOC"}),
        help_text=_(
            "One per line: OUR_PROJECT = THEIR_PROJECT (theirs must be one the invitation "
            "offers), e.g. OPS = LOC. Only these projects of yours are shared."
        ),
    )
    sync_direction = forms.ChoiceField(
        label=_("Sync direction"),
        choices=SyncDirection.choices,
        initial=SyncDirection.PUSH,
        help_text=_(
            "Push: your install sends your changes to theirs and ignores theirs. "
            "Two-way: it also applies the partner's changes to your Jira."
        ),
    )

    def clean_project_mappings(self) -> list[dict[str, str]]:
        mappings = []
        for line in self.cleaned_data["project_mappings"].splitlines():
            if not line.strip():
                continue
            local, sep, remote = line.partition("=")
            local, remote = local.strip().upper(), remote.strip().upper()
            if not sep or not local or not remote:
                raise ValidationError(_("Write each line as OUR_PROJECT = THEIR_PROJECT."))
            mapping = ProjectMapping(local_project_key=local, remote_project_key=remote)
            try:
                mapping.clean_fields(exclude=("organization",))
            except ValidationError as exc:
                raise ValidationError(" ".join(exc.messages)) from None
            mappings.append({"local_project_key": local, "remote_project_key": remote})
        if not mappings:
            raise ValidationError(_("Map at least one project."))
        return mappings


class ProjectMappingInline(admin.TabularInline):
    model = ProjectMapping
    extra = 0
    fields = (
        "local_project_key",
        "remote_project_key",
        "issue_type_map",
        "push_jql",
        "create_local_issues",
    )


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    extra = 0
    fields = ("local_field", "remote_field", "direction", "value_map")


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    change_form_template = "admin/organizations/organization/change_form.html"
    change_list_template = "admin/organizations/organization/change_list.html"
    list_display = (
        "name",
        "public_id",
        "sync_direction",
        "connection_type",
        "handshake",
        "enabled",
        "last_delivery_at",
    )
    list_filter = (
        "sync_direction",
        "connection_type",
        "handshake_status",
        "enabled",
        "remote_flavor",
    )
    search_fields = ("name", "public_id", "remote_base_url")
    readonly_fields = (
        "connection_type",
        "handshake_status",
        "handshake_activated_at",
        "last_delivery_at",
        "secret_rotated_at",
        "previous_secret_valid_until",
        "created_at",
        "updated_at",
        "remote_token_state",
        "remote_handshake_token_state",
        "credentials_state",
    )
    inlines = (ProjectMappingInline, FieldMappingInline)
    actions = ("rotate_secret_action", "enable_two_way_action", "disable_two_way_action")
    fieldsets = (
        (None, {"fields": ("public_id", "name", "enabled")}),
        (
            _("Partner Jira site"),
            {
                "fields": (
                    "remote_base_url",
                    "remote_flavor",
                    "remote_user",
                    "remote_token",
                    "remote_token_state",
                    "remote_token_expires_at",
                    "credentials_state",
                )
            },
        ),
        (
            _("Sync"),
            {
                "fields": (
                    "sync_direction",
                    "remote_handshake_token",
                    "remote_handshake_token_state",
                    "require_signature",
                    "conflict_policy",
                    "remote_delete_policy",
                    "remote_delete_status",
                    "local_delete_policy",
                    "local_delete_status",
                    "target_gone_policy",
                    "copy_restricted_comments",
                    "link_type_map",
                    "sync_worklogs",
                    "create_missing_versions",
                    "copy_attachments",
                    "attachment_max_bytes",
                    "attachment_exclude",
                    "relay_partner_issues",
                    "connection_type",
                    "handshake_status",
                    "handshake_activated_at",
                    "last_delivery_at",
                    "secret_rotated_at",
                    "previous_secret_valid_until",
                )
            },
        ),
        (
            _("People"),
            {
                "fields": (
                    "user_map",
                    "unmapped_user_policy",
                    "default_local_user",
                    "default_remote_user",
                )
            },
        ),
        (_("Record"), {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        """The partner's secrets are write-only: users who may not change the organization
        get no field for them at all (a read-only field would print the value), only their
        "set / not set" state. An app connection (Scenario B) has no partner Jira fields."""
        fieldsets = super().get_fieldsets(request, obj)
        hidden: tuple[str, ...] = ()
        if obj is not None and obj.connection_type == ConnectionType.APP:
            # Scenario B: the partner's install writes into the partner's Jira; there is no
            # partner Jira site, token or webhook secret here (the connection panel instead).
            hidden = APP_HIDDEN_FIELDS
        if obj is not None and not self.has_change_permission(request, obj):
            hidden += SECRET_FORM_FIELDS
        if not hidden:
            return fieldsets
        shown = [
            (name, {**opts, "fields": tuple(f for f in opts["fields"] if f not in hidden)})
            for name, opts in fieldsets
        ]
        return [(name, opts) for name, opts in shown if opts["fields"]]

    @method_decorator(sensitive_post_parameters(*SECRET_FORM_FIELDS))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Error reports (DEBUG pages, mailed tracebacks) never show the secrets posted.
        return super().changeform_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _secret_state(obj: Organization | None, name: str, element_id: str):
        set_at = getattr(obj, f"{name}_set_at", None) if obj else None
        if obj is None or not getattr(obj, name):
            text = _("Not set")
        elif set_at is None:
            text = _("Set")
        else:
            text = _("Set on %(when)s") % {"when": date_format(set_at, "DATETIME_FORMAT")}
        return format_html('<span id="{}">{}</span>', element_id, text)

    @admin.display(description=_("Handshake status"), ordering="handshake_status")
    def handshake(self, obj):
        return handshake_label(obj)

    @admin.display(description=_("Partner Jira API token"))
    def remote_token_state(self, obj):
        return self._secret_state(obj, "remote_token", "remote-token-state")

    @admin.display(description=_("Partner credentials"))
    def credentials_state(self, obj):
        if obj.credentials_rejected_at:
            return format_html(
                '<span id="credentials-state" style="color:#ba2121">{} ({}): {}<br>{}</span>',
                _("credentials rejected"),
                obj.credentials_rejected_at,
                obj.credentials_rejected_message,
                _("Deliveries wait; saving a new API token retries them."),
            )
        return format_html('<span id="credentials-state">{}</span>', _("not rejected"))

    @admin.display(description=_("Partner webhook secret"))
    def remote_handshake_token_state(self, obj):
        return self._secret_state(obj, "remote_handshake_token", "remote-handshake-token-state")

    def get_readonly_fields(self, request, obj=None):
        # The public id is part of the partner's webhook URL: fixed once created.
        return self.readonly_fields + (("public_id",) if obj else ())

    # --- saving goes through the services -------------------------------------------------

    def save_model(self, request, obj, form, change) -> None:
        data = form.service_data()
        if change:
            saved = services.organization_update(organization=obj, data=data)
        else:
            data.pop("name", None)
            saved = services.organization_create(name=form.cleaned_data["name"], **data)
        # The admin goes on with `obj` (inlines, messages, redirect): give it the saved state.
        obj.pk = saved.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def delete_model(self, request, obj) -> None:
        services.organization_delete(organization=obj)

    def delete_queryset(self, request, queryset) -> None:
        for organization in queryset:
            services.organization_delete(organization=organization)

    # --- the two-way panel -----------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.connection_type == ConnectionType.APP:
            context["connection_panel"] = self.connection_panel_context(obj)
        elif obj is not None and obj.is_bidirectional:
            context["partner_setup"] = self.partner_setup_context(request, obj)
        if obj is not None and obj.is_app:
            context["offers"] = selectors.organization_offers(organization=obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def connection_panel_context(self, obj: Organization) -> dict:
        """Scenario B: the partner's install, the handshake, and which projects map."""
        connection = selectors.organization_connection(organization=obj)
        return {
            "connection": connection,
            "handshake_status": obj.handshake_status,
            "handshake_status_label": handshake_label(obj),
            "handshake_activated_at": obj.handshake_activated_at,
            "mappings": [
                (m.local_project_key, m.remote_project_key) for m in obj.project_mappings.all()
            ],
            "waiting_for_accept": bool(
                connection
                and connection.invitation_token_hash
                and not connection.invitation_spent_at
                and not connection.disconnected_at
            ),
        }

    def partner_setup_context(self, request: HttpRequest, obj: Organization) -> dict:
        can_see_secret = self.has_change_permission(request, obj)
        url = obj.incoming_webhook_url
        full_url = f"{url}?secret={obj.incoming_secret}" if can_see_secret else None
        masked_url = f"{url}?secret=" + "\u2022" * 12
        jql = selectors.organization_partner_jql(organization=obj)
        name = f"Sync to {obj.name}"[:100]
        return {
            "can_see_secret": can_see_secret,
            "webhook_url": full_url,
            "webhook_url_masked": masked_url,
            "jql": jql,
            "events": PARTNER_WEBHOOK_EVENTS,
            "flavor": obj.remote_flavor,
            "handshake_status": obj.handshake_status,
            "handshake_status_label": obj.get_handshake_status_display(),
            "handshake_activated_at": obj.handshake_activated_at,
            "has_signature_secret": bool(obj.remote_handshake_token),
            "require_signature": obj.require_signature,
            "previous_secret_valid_until": obj.previous_secret_valid_until,
            "remote_base_url": obj.remote_base_url.rstrip("/"),
            "webhook_name": name,
            # The body of Jira's admin webhook API call, for the REST alternative.
            "rest_body": json.dumps(
                {
                    "name": name,
                    "url": full_url or masked_url,
                    "events": list(WEBHOOK_EVENTS),
                    "filters": {"issue-related-events-section": jql},
                    "excludeBody": False,
                    "secret": "YOUR_WEBHOOK_SECRET",
                }
            ),
        }

    # --- buttons on the change form and actions on the list -------------------------------

    def get_urls(self):
        def view(name, func):
            return path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(func),
                name=f"organizations_organization_{name.replace('-', '_')}",
            )

        return [
            view("rotate-secret", self.rotate_secret_view),
            view("two-way-on", self.two_way_on_view),
            view("two-way-off", self.two_way_off_view),
            view("invitation", self.invitation_view),
            view("disconnect", self.disconnect_view),
            view("accept-offer", self.accept_offer_view),
            view("rotate-key", self.rotate_key_view),
            path(
                "accept-invitation/",
                self.admin_site.admin_view(self.accept_invitation_view),
                name="organizations_organization_accept_invitation",
            ),
            *super().get_urls(),
        ]

    def _button_view(self, request, pk, service, message):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(Organization, pk=pk)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        try:
            service(organization=obj)
        except ValidationError as exc:  # e.g. a partner URL saved before a stricter policy
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        except connections.ConnectionRefused as exc:  # a partner install's step refused
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:organizations_organization_change", args=[pk]))

    def rotate_secret_view(self, request, pk):
        return self._button_view(
            request,
            pk,
            services.organization_rotate_secret,
            _("New incoming secret generated; the previous one stays valid for the grace period."),
        )

    def two_way_on_view(self, request, pk):
        return self._button_view(
            request, pk, services.organization_enable_two_way, _("Two-way sync is on.")
        )

    def two_way_off_view(self, request, pk):
        return self._button_view(
            request, pk, services.organization_disable_two_way, _("Two-way sync is off.")
        )

    def _bulk(self, request, queryset, service, message) -> None:
        done = 0
        for obj in queryset:
            try:
                service(organization=obj)
            except ValidationError as exc:  # e.g. a partner URL saved before a stricter policy
                self.message_user(request, f"{obj}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Rotate the incoming secret"), permissions=("change",))
    def rotate_secret_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            services.organization_rotate_secret,
            _("Rotated the incoming secret of %(n)d organization(s)."),
        )

    @admin.action(description=_("Turn two-way sync on"), permissions=("change",))
    def enable_two_way_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            services.organization_enable_two_way,
            _("Two-way sync is on for %(n)d organization(s)."),
        )

    @admin.action(description=_("Turn two-way sync off (push only)"), permissions=("change",))
    def disable_two_way_action(self, request, queryset):
        self._bulk(
            request,
            queryset,
            services.organization_disable_two_way,
            _("Two-way sync is off for %(n)d organization(s)."),
        )

    # --- Scenario B: connection invitations ------------------------------------------------

    def invitation_view(self, request, pk):
        """Create a connection invitation and show its text once (only its hash is kept)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(Organization, pk=pk)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        change_url = reverse("admin:organizations_organization_change", args=[pk])
        try:
            text, expires_at = connections.invitation_create(organization=obj)
        except connections.ConnectionRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": obj,
            "title": _("Connection invitation for %(name)s") % {"name": obj.name},
            "invitation": text,
            "expires_at": expires_at,
            "change_url": change_url,
        }
        return TemplateResponse(
            request, "admin/organizations/organization/invitation.html", context
        )

    def disconnect_view(self, request, pk):
        return self._button_view(
            request,
            pk,
            connections.organization_disconnect,
            _("Disconnected from the partner's install."),
        )

    def rotate_key_view(self, request, pk):
        return self._button_view(
            request,
            pk,
            connections.connection_rotate_key,
            _("New signing key: the partner's install accepted it."),
        )

    def accept_offer_view(self, request, pk):
        return self._button_view(
            request,
            pk,
            connections.connection_offer_accept,
            _("Accepted what the partner now sends."),
        )

    @method_decorator(sensitive_post_parameters("invitation"))
    def accept_invitation_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = AcceptInvitationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                organization = connections.invitation_accept(
                    invitation=form.cleaned_data["invitation"],
                    name=form.cleaned_data["name"],
                    project_mappings=form.cleaned_data["project_mappings"],
                    sync_direction=form.cleaned_data["sync_direction"],
                )
            except connections.ConnectionRefused as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _("Connected to the partner's install. %(status)s.")
                    % {"status": handshake_label(organization)},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:organizations_organization_change", args=[organization.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Accept a connection invitation"),
            "form": form,
        }
        return TemplateResponse(
            request, "admin/organizations/organization/accept_invitation.html", context
        )
