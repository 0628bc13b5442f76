import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField

from .jira_urls import validate_jira_url

PROJECT_KEY_VALIDATOR = RegexValidator(
    r"^[A-Z][A-Z0-9_]{0,254}$",
    _("A Jira project key: capital letters, digits and underscores, starting with a letter."),
)
FIELD_ID_VALIDATOR = RegexValidator(
    r"^(customfield_\d+|[a-z][A-Za-z0-9]*)$",
    _("A Jira field id such as 'summary', 'priority' or 'customfield_10010'."),
)
PUBLIC_ID_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,62}$",
    _("Lower-case letters, digits and hyphens (it is part of a URL), e.g. 'org-123'."),
)


# The standard Jira fields the sync engine knows how to carry; custom fields come as
# `customfield_<n>`.
STANDARD_FIELDS = (
    "summary",
    "description",
    "priority",
    "labels",
    "duedate",
    "issuetype",
    "status",
    "assignee",
    "reporter",
    "components",
    "fixVersions",
    "versions",
    "parent",
    "comment",
)
# Synced unless a field mapping says otherwise (comments always, by their own path), except
# these, which sync only when mapped: the reporter, and components and versions (fix and
# affects), which cross by name and so need the same names in both projects.
MAPPED_ONLY = ("reporter", "components", "fixVersions", "versions", "comment")


def validate_value_map(value, *, reversible: bool) -> None:
    """A value map is a JSON object of non-empty strings; read backwards it must be too."""
    if not isinstance(value, dict):
        raise ValidationError(_('Must be a JSON object such as {"High": "Major"}.'))
    for key, mapped in value.items():
        if not key.strip() or not isinstance(mapped, str) or not mapped.strip():
            raise ValidationError(
                _("Every key and value must be a non-empty string (%(key)s)."),
                params={"key": key},
            )
    if reversible:
        seen: dict[str, str] = {}
        for key, mapped in value.items():
            if mapped in seen:
                raise ValidationError(
                    _(
                        "'%(a)s' and '%(b)s' both map to '%(v)s', so a partner value could not "
                        "be mapped back. Use a push-only mapping or distinct values."
                    ),
                    params={"a": seen[mapped], "b": key, "v": mapped},
                )
            seen[mapped] = key


def generate_public_id() -> str:
    return f"org-{secrets.token_hex(4)}"


class JiraFlavor(models.TextChoices):
    CLOUD = "cloud", _("Jira Cloud (REST v3)")
    DATACENTER = "datacenter", _("Jira Data Center / Server (REST v2)")


class SyncDirection(models.TextChoices):
    PUSH = "push", _("Push (local -> partner)")
    BIDIRECTIONAL = "bidirectional", _("Two-way (local <-> partner)")


class HandshakeStatus(models.TextChoices):
    NONE = "none", _("None")
    PENDING = "pending", _("Pending: waiting for the partner's first webhook")
    ACTIVE = "active", _("Active: the partner's webhook has been received")
    # Scenario B only: either side disconnected; the partner's messages are refused.
    DISCONNECTED = "disconnected", _("Disconnected")


class ConnectionType(models.TextChoices):
    """Scenario A: we hold the partner's Jira credentials and receive its Jira's webhooks.
    Scenario B: the partner runs this service too; the two installs connect by invitation."""

    JIRA_WEBHOOK = "jiraWebhook", _("Partner Jira webhook (we hold the partner's credentials)")
    APP = "app", _("Partner install of this service (connection invitation)")


class ConflictPolicy(models.TextChoices):
    LATER_WINS = "later_wins", _("The later change of the field wins (by each side's changelog)")
    LOCAL_WINS = "local_wins", _("Our side wins")
    REMOTE_WINS = "remote_wins", _("The partner's side wins")


class DeletePolicy(models.TextChoices):
    """What happens to the other side's copy when an issue is deleted (confirmed gone)."""

    COMMENT = "comment", _("Add a comment to the copy")
    TRANSITION = "transition", _("Move the copy to a status")
    DELETE = "delete", _("Delete the copy")
    UNLINK = "unlink", _("Only stop syncing the pair")


class TargetGonePolicy(models.TextChoices):
    """What the sync does when the other side's copy of a linked issue is gone (a 404 on a
    write or read, confirmed by a GET by id): someone deleted it at that site."""

    UNLINK = "unlink", _("Close the pair (stop syncing the issue)")
    RECREATE = "recreate", _("Create the copy again on the next change")


class UnmappedUserPolicy(models.TextChoices):
    """What a user field becomes on the other side when its user has no counterpart there."""

    LEAVE = "leave", _("Leave the other side's value as it is")
    DEFAULT = "default", _("Set the default user of that side")
    UNASSIGN = "unassign", _("Clear the field (unassign)")


def validate_user_map(value) -> None:
    """{local user id: partner user id}, one to one (it is read both ways)."""
    _validate_one_to_one(
        value,
        _('Must be a JSON object such as {"712020:1a2b...": "jdoe"}.'),
        _("Every user id must be a non-empty string (%(key)s)."),
    )


def validate_link_type_map(value) -> None:
    """{local link type name: partner link type name}, one to one (read both ways)."""
    _validate_one_to_one(
        value,
        _('Must be a JSON object such as {"Blocks": "Blocker"}.'),
        _("Every link type name must be a non-empty string (%(key)s)."),
    )


def _validate_one_to_one(value, not_object: str, not_text: str) -> None:
    if not isinstance(value, dict):
        raise ValidationError(not_object)
    seen: dict[str, str] = {}
    for key, mapped in value.items():
        if not key.strip() or not isinstance(mapped, str) or not mapped.strip():
            raise ValidationError(not_text, params={"key": key})
        if mapped in seen:
            raise ValidationError(
                _("'%(a)s' and '%(b)s' are both mapped to the partner's '%(v)s'; map each once."),
                params={"a": seen[mapped], "b": key, "v": mapped},
            )
        seen[mapped] = key


class Organization(models.Model):
    """A partner organization: its Jira site and how we sync with it."""

    public_id = models.CharField(
        _("id"),
        max_length=63,
        unique=True,
        default=generate_public_id,
        validators=[PUBLIC_ID_VALIDATOR],
        help_text=_("Public id, used in the incoming webhook URL."),
    )
    name = models.CharField(_("name"), max_length=200)
    enabled = models.BooleanField(_("enabled"), default=True)

    # The partner's Jira site.
    remote_base_url = models.URLField(_("partner Jira URL"), blank=True)
    remote_flavor = models.CharField(
        _("partner Jira flavor"),
        max_length=16,
        choices=JiraFlavor.choices,
        default=JiraFlavor.CLOUD,
    )
    remote_user = models.CharField(
        _("partner Jira user"),
        max_length=254,
        blank=True,
        help_text=_("E-mail address (Cloud) or user name (Data Center)."),
    )
    remote_token = EncryptedTextField(_("partner Jira API token / PAT"), blank=True, default="")
    remote_token_set_at = models.DateTimeField(_("API token set"), null=True, blank=True)
    remote_token_expires_at = models.DateField(
        _("API token expires"),
        null=True,
        blank=True,
        help_text=_("The token's expiry date (Cloud tokens expire within a year): warned before."),
    )
    # The partner's site answered 401 to our token: deliveries wait until a new one is saved.
    credentials_rejected_at = models.DateTimeField(null=True, blank=True)
    credentials_rejected_message = models.TextField(blank=True)

    # Two-way sync.
    sync_direction = models.CharField(
        _("sync direction"),
        max_length=16,
        choices=SyncDirection.choices,
        default=SyncDirection.PUSH,
    )
    incoming_secret = EncryptedTextField(_("incoming secret"), blank=True, default="")
    # Secrets rotated out and still in their grace period: an encrypted JSON list of
    # {"secret", "validUntil"} (organizations.selectors reads it, services write it).
    # `previous_secret_valid_until` is the latest of their expiries, shown to admins; setting
    # it to now ends every grace period at once.
    previous_incoming_secrets = EncryptedTextField(blank=True, default="")
    previous_secret_valid_until = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    handshake_status = models.CharField(
        _("handshake status"),
        max_length=16,
        choices=HandshakeStatus.choices,
        default=HandshakeStatus.NONE,
    )
    handshake_activated_at = models.DateTimeField(null=True, blank=True)
    connection_type = models.CharField(
        _("connection type"),
        max_length=16,
        choices=ConnectionType.choices,
        default=ConnectionType.JIRA_WEBHOOK,
    )
    remote_handshake_token = EncryptedTextField(
        _("partner webhook secret"),
        blank=True,
        default="",
        help_text=_(
            "The secret the partner's Jira admin set on their webhook; it verifies the "
            "X-Hub-Signature of each delivery."
        ),
    )
    remote_handshake_token_set_at = models.DateTimeField(
        _("partner webhook secret set"), null=True, blank=True
    )
    require_signature = models.BooleanField(
        _("require a signature"),
        default=False,
        help_text=_(
            "Refuse deliveries without a valid X-Hub-Signature (otherwise a signature is "
            "checked only when present). Needs the partner webhook secret."
        ),
    )

    conflict_policy = models.CharField(
        _("conflict policy"),
        max_length=16,
        choices=ConflictPolicy.choices,
        default=ConflictPolicy.LATER_WINS,
        help_text=_("When one field was changed on both sides before either synced."),
    )
    remote_delete_policy = models.CharField(
        _("when the partner deletes an issue"),
        max_length=16,
        choices=DeletePolicy.choices,
        default=DeletePolicy.COMMENT,
    )
    remote_delete_status = models.CharField(
        _("status for deleted partner issues"),
        max_length=64,
        blank=True,
        help_text=_("With the 'move to a status' policy, e.g. 'Done'."),
    )
    local_delete_policy = models.CharField(
        _("when we delete an issue"),
        max_length=16,
        choices=DeletePolicy.choices,
        default=DeletePolicy.COMMENT,
        help_text=_(
            "What happens to the partner's copy of a local issue deleted in our Jira. The "
            "default leaves it in place with a comment saying it is no longer synced."
        ),
    )
    local_delete_status = models.CharField(
        _("status for the partner's copies of deleted issues"),
        max_length=64,
        blank=True,
        help_text=_("With the 'move to a status' policy, e.g. 'Done'."),
    )
    target_gone_policy = models.CharField(
        _("when the other side's copy is gone"),
        max_length=16,
        choices=TargetGonePolicy.choices,
        default=TargetGonePolicy.UNLINK,
        help_text=_(
            "A change to a linked issue whose copy was deleted at the other site (Jira answers "
            "404): close the pair, recorded in the sync activity, or create the copy again "
            "with its comments. Push-only partners never tell us about their deletes, so this "
            "is how their deletes are noticed."
        ),
    )
    link_type_map = models.JSONField(
        _("issue link type map"),
        default=dict,
        blank=True,
        help_text=_(
            'Issue link types by name, local to partner, where they differ, e.g. {"Blocks": '
            '"Blocker"}. An unnamed type keeps its name. Links between two synced issues are '
            "mirrored between their copies; a type the other site lacks is recorded, not sent."
        ),
    )
    copy_restricted_comments = models.BooleanField(
        _("copy restricted comments"),
        default=False,
        help_text=_(
            "Also copy comments restricted to a role or group, and Jira Service Management "
            "internal comments. Off: they never leave the site they were written on."
        ),
    )
    sync_worklogs = models.BooleanField(
        _("sync worklogs"),
        default=False,
        help_text=_(
            "Copy time logged on either side to the other as a worklog by the sync account, "
            "headed with its author; edits and deletes follow. Off: worklog events are ignored."
        ),
    )
    create_missing_versions = models.BooleanField(
        _("create missing versions"),
        default=False,
        help_text=_(
            "A fix or affects version whose name the other side's project lacks is created "
            "there (name only: release state and dates are not synced); needs the sync "
            "account to administer that project. Off: it is left out and recorded."
        ),
    )
    copy_attachments = models.BooleanField(
        _("copy attachments"),
        default=True,
        help_text=_(
            "Copy attachments both ways (a deleted attachment's copy is deleted too). Files "
            "over the size limit or matching an excluded pattern are recorded, not copied."
        ),
    )
    attachment_max_bytes = models.PositiveBigIntegerField(
        _("largest attachment copied (bytes)"),
        default=25 * 1024 * 1024,
        help_text=_("A larger file is recorded as refused and not retried."),
    )
    attachment_exclude = models.CharField(
        _("attachments not copied (file name patterns)"),
        max_length=500,
        blank=True,
        default="",
        help_text=_("Comma-separated patterns, e.g. '*.exe, *.tmp' (case-insensitive)."),
    )
    relay_partner_issues = models.BooleanField(
        _("receive other partners' issues"),
        default=False,
        help_text=_(
            "Also push to this partner local issues that came from another partner "
            "organization. Off: only issues that originate in our Jira (or at this partner)."
        ),
    )

    # People: who is who on the two sites.
    user_map = models.JSONField(
        _("user map"),
        default=dict,
        blank=True,
        help_text=_(
            "Our user -> the partner's user, by id: an accountId on Jira Cloud, a user name "
            '(or key) on Data Center, e.g. {"712020:1a2b...": "jdoe"}. Matched before e-mail '
            "addresses, which Jira Cloud usually hides."
        ),
    )
    unmapped_user_policy = models.CharField(
        _("when a user has no counterpart"),
        max_length=16,
        choices=UnmappedUserPolicy.choices,
        default=UnmappedUserPolicy.LEAVE,
        help_text=_(
            "A user found neither in the user map nor by e-mail on the other side. The "
            "default leaves the other side's assignee (or other user field) alone; such users "
            "are listed on the sync dashboard so you can map them."
        ),
    )
    default_local_user = models.CharField(
        _("default local user"),
        max_length=128,
        blank=True,
        help_text=_("With the 'default user' policy: our user (id) for unmapped partner users."),
    )
    default_remote_user = models.CharField(
        _("default partner user"),
        max_length=128,
        blank=True,
        help_text=_(
            "With the 'default user' policy: the partner's user (id) for our unmapped users."
        ),
    )

    last_delivery_at = models.DateTimeField(_("last delivery"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by a database trigger on every insert, update or delete of the organization's
    # field mappings, whatever writes them (ORM, queryset `.update()`, SQL): a worker keeps
    # its field pairs per process by (organization, config_version) (`sync.mapping`).
    config_version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ("name",)
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    def get_absolute_url(self) -> str:
        return reverse("admin:organizations_organization_change", args=[self.pk])

    # Services turn this off for a change that only winds the organization down.
    url_check = True

    def clean(self) -> None:
        if self.remote_base_url and self.url_check:
            try:
                validate_jira_url(self.remote_base_url)
            except ValidationError as exc:
                raise ValidationError({"remote_base_url": exc.messages}) from None
        if self.remote_delete_policy == DeletePolicy.TRANSITION and not self.remote_delete_status:
            raise ValidationError(
                {"remote_delete_status": _("Name the status to move deleted partner issues to.")}
            )
        if self.local_delete_policy == DeletePolicy.TRANSITION and not self.local_delete_status:
            raise ValidationError(
                {
                    "local_delete_status": _(
                        "Name the status to move the partner's copies of deleted issues to."
                    )
                }
            )
        try:
            validate_user_map(self.user_map)
        except ValidationError as exc:
            raise ValidationError({"user_map": exc.messages}) from None
        try:
            validate_link_type_map(self.link_type_map)
        except ValidationError as exc:
            raise ValidationError({"link_type_map": exc.messages}) from None
        if self.unmapped_user_policy == UnmappedUserPolicy.DEFAULT and not (
            self.default_local_user or self.default_remote_user
        ):
            raise ValidationError(
                {
                    "unmapped_user_policy": _(
                        "Name a default user for at least one side (local or partner)."
                    )
                }
            )
        if self.require_signature and not self.remote_handshake_token:
            raise ValidationError(
                {
                    "require_signature": _(
                        "Store the partner webhook secret first: without it no signature "
                        "can be checked."
                    )
                }
            )

    @property
    def is_bidirectional(self) -> bool:
        return self.sync_direction == SyncDirection.BIDIRECTIONAL

    @property
    def is_app(self) -> bool:
        """Connected to the partner's install of this service (Scenario B)."""
        return self.connection_type == ConnectionType.APP

    @property
    def incoming_webhook_url(self) -> str:
        path = reverse("webhooks:incoming", kwargs={"org_id": self.public_id})
        return f"{settings.PUBLIC_BASE_URL}{path}"


class ProjectMapping(models.Model):
    """A local project paired with a partner project."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="project_mappings"
    )
    local_project_key = models.CharField(
        _("local project key"), max_length=255, validators=[PROJECT_KEY_VALIDATOR]
    )
    remote_project_key = models.CharField(
        _("partner project key"), max_length=255, validators=[PROJECT_KEY_VALIDATOR]
    )
    issue_type_map = models.JSONField(
        _("issue type map"),
        default=dict,
        blank=True,
        help_text=_('Local issue type -> partner issue type, e.g. {"Bug": "Defect"}.'),
    )
    push_jql = models.TextField(
        _("local issues to push (JQL)"),
        blank=True,
        help_text=_('Empty means every issue of the local project, e.g. labels = "shared".'),
    )
    create_local_issues = models.BooleanField(
        _("create local issues"),
        default=True,
        help_text=_("In two-way sync, create a local issue for a new partner issue."),
    )

    class Meta:
        verbose_name = _("project mapping")
        verbose_name_plural = _("project mappings")
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "local_project_key"), name="uniq_local_project_per_org"
            ),
            models.UniqueConstraint(
                fields=("organization", "remote_project_key"),
                name="uniq_remote_project_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.local_project_key} <-> {self.remote_project_key}"

    def clean(self) -> None:
        try:
            validate_value_map(self.issue_type_map, reversible=True)
        except ValidationError as exc:
            raise ValidationError({"issue_type_map": exc.messages}) from None


class FieldDirection(models.TextChoices):
    BOTH = "both", _("Both ways")
    PUSH = "push", _("Push only (local -> partner)")
    PULL = "pull", _("Pull only (partner -> local)")


class FieldMapping(models.Model):
    """A local field paired with a partner field, with a direction and a value map."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="field_mappings"
    )
    local_field = models.CharField(_("local field"), max_length=64, validators=[FIELD_ID_VALIDATOR])
    remote_field = models.CharField(
        _("partner field"), max_length=64, validators=[FIELD_ID_VALIDATOR]
    )
    direction = models.CharField(
        _("direction"), max_length=8, choices=FieldDirection.choices, default=FieldDirection.BOTH
    )
    value_map = models.JSONField(
        _("value map"),
        default=dict,
        blank=True,
        help_text=_(
            "Local value -> partner value (status, priority, issue type, users), e.g. "
            '{"In Progress": "Doing"}. Values not in the map are copied as they are.'
        ),
    )

    class Meta:
        verbose_name = _("field mapping")
        verbose_name_plural = _("field mappings")
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "local_field"), name="uniq_local_field_per_org"
            ),
            models.UniqueConstraint(
                fields=("organization", "remote_field"), name="uniq_remote_field_per_org"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.local_field} -> {self.remote_field} ({self.direction})"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        for name in ("local_field", "remote_field"):
            field_id = getattr(self, name)
            if field_id and not (
                field_id in STANDARD_FIELDS or field_id.startswith("customfield_")
            ):
                errors[name] = [
                    _("Unknown field '%(f)s'. Known: %(known)s, or customfield_<id>.")
                    % {"f": field_id, "known": ", ".join(STANDARD_FIELDS)}
                ]
        try:
            validate_value_map(self.value_map, reversible=self.direction != FieldDirection.PUSH)
        except ValidationError as exc:
            errors["value_map"] = exc.messages
        if errors:
            raise ValidationError(errors)


class ConnectionRole(models.TextChoices):
    INVITER = "inviter", _("We invited the partner")
    ACCEPTOR = "acceptor", _("We accepted the partner's invitation")


def generate_connection_id() -> str:
    return secrets.token_hex(16)


class Connection(models.Model):
    """Scenario B: the link between one organization and the partner's install of this service.

    `connection_id` is ours (in our URLs, /connections/<id>/...); the partner's is
    `partner_connection_id`. Our private signing key is encrypted at rest; the invitation's
    one-time token is kept only as its SHA-256 hash.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="connection"
    )
    connection_id = models.CharField(
        _("connection id"), max_length=32, unique=True, default=generate_connection_id
    )
    role = models.CharField(_("role"), max_length=16, choices=ConnectionRole.choices)
    signing_private_key = EncryptedTextField(_("our signing key"), blank=True, default="")
    signing_public_key = models.CharField(_("our public key"), max_length=64, blank=True)
    key_rotated_at = models.DateTimeField(null=True, blank=True)

    partner_base_url = models.URLField(_("partner install URL"), blank=True)
    partner_connection_id = models.CharField(_("partner connection id"), max_length=32, blank=True)
    partner_public_key = models.CharField(_("partner public key"), max_length=64, blank=True)
    partner_projects = models.JSONField(
        _("partner projects"),
        default=list,
        blank=True,
        help_text=_("The projects the partner offered (inviter) or allowed (acceptor)."),
    )
    partner_fields = models.JSONField(default=list, blank=True)
    # What each side sends (Scenario B): {"version": n, "projects": [...], "fields": [...]}.
    # Ours as last announced, and as the partner accepted it (in effect: we send what both
    # name); theirs as last announced, and as we accepted it (in effect: we apply only that).
    offer_out = models.JSONField(default=dict, blank=True)
    offer_out_accepted = models.JSONField(default=dict, blank=True)
    offer_in = models.JSONField(default=dict, blank=True)
    offer_in_accepted = models.JSONField(default=dict, blank=True)

    invitation_token_hash = models.CharField(max_length=64, blank=True)
    invitation_expires_at = models.DateTimeField(null=True, blank=True)
    invitation_spent_at = models.DateTimeField(null=True, blank=True)

    # Our hello reached the partner and verified there (answered 2xx) / theirs verified here.
    our_hello_verified = models.BooleanField(default=False)
    partner_hello_verified = models.BooleanField(default=False)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")

    def __str__(self) -> str:
        return f"{self.organization.name}: {self.role} {self.connection_id}"

    @property
    def is_active(self) -> bool:
        return self.our_hello_verified and self.partner_hello_verified and not self.disconnected_at


class ConnectionMessage(models.Model):
    """A signed message received on a connection: its id refuses replays (kept longer than
    the signing window)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("connection", "message_id"), name="uniq_message_per_connection"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


def generate_message_id() -> str:
    return secrets.token_hex(16)


class OutboxMessage(models.Model):
    """Scenario B's transactional outbox: a message for the partner's install, written in the
    same transaction as the sync records that call for it, and sent by the relay (in order,
    at least once; the receiver refuses a message id it already has, so a resend after a lost
    answer is harmless). `pair` is our issue id, `seq` its number among that pair's messages."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="outbox")
    message_id = models.CharField(max_length=64, unique=True, default=generate_message_id)
    kind = models.CharField(max_length=16)
    pair = models.CharField(max_length=64, blank=True)
    seq = models.PositiveIntegerField(default=0)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [models.Index(fields=("connection", "sent_at", "id"), name="outbox_pending")]

    def __str__(self) -> str:
        return f"{self.kind} {self.pair}#{self.seq}"
