from django.db import models
from django.utils.translation import gettext_lazy as _


class Side(models.TextChoices):
    LOCAL = "local", _("Local Jira")
    REMOTE = "remote", _("Partner Jira")


class LinkStatus(models.TextChoices):
    NEW = "new", _("New")
    CREATING = "creating", _("Creating the other issue")
    LINKED = "linked", _("Linked")
    DELETED = "deleted", _("Deleted")
    # The other side's copy was deleted at its site (found by a 404 on it, confirmed by a GET
    # by id) and the organization's policy closed the pair rather than create it again.
    GONE = "gone", _("Closed: the other issue is gone")


# A pair no longer synced: its events are ignored, nothing is written for it.
CLOSED_LINK_STATUSES = (LinkStatus.DELETED, LinkStatus.GONE)


# The Jira entity property that tags an issue we created with its link (set in the create
# call), so a create whose answer was lost is found again and its webhook known as ours.
LINK_PROPERTY = "jira-sync.link"
# The key of `IssueLink.state` that holds the fields a side refused (see `IssueLink.refused`).
REFUSED = "refused"
# The key of `IssueLink.state` that holds a Scenario B pair's message numbers (`peer.py`).
PEER = "peer"
# The key of `IssueLink.state` set when the pair was closed because its source issue moved
# out of every mapped project: {"side", "to" (the project), "at"}; a move back revives it.
MOVED_OUT = "moved_out"


class IssueLink(models.Model):
    """A local issue and its partner issue, with the field values both sides last agreed on.

    `state` is `{"local": {field: value}, "remote": {field: value}}`: per mapped field, the
    value each side held after the last sync. A side's value that differs from it is a real
    change; one that equals it is not (nothing to write).
    """

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="issue_links"
    )
    local_issue_id = models.CharField(max_length=32, null=True, blank=True)
    local_issue_key = models.CharField(max_length=64, blank=True)
    remote_issue_id = models.CharField(max_length=32, null=True, blank=True)
    remote_issue_key = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=8, choices=Side.choices, default=Side.LOCAL)
    status = models.CharField(max_length=10, choices=LinkStatus.choices, default=LinkStatus.NEW)
    create_started_at = models.DateTimeField(null=True, blank=True)
    state = models.JSONField(default=dict, blank=True)
    # A lease serializes work on one pair across workers (see services.issue_link_lease).
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("issue link")
        verbose_name_plural = _("issue links")
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "local_issue_id"), name="uniq_link_local_issue"
            ),
            models.UniqueConstraint(
                fields=("organization", "remote_issue_id"), name="uniq_link_remote_issue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.local_issue_key or '?'} <-> {self.remote_issue_key or '?'}"

    def side_state(self, side: str) -> dict:
        return self.state.setdefault(side, {})

    def refused(self, side: str) -> dict:
        """Fields `side`'s Jira refused to take (e.g. not on its edit screen): field ->
        {"fingerprint": of the value refused, "message": Jira's reason}. Such a value is not
        sent again with every other change; a new value is tried."""
        return self.state.setdefault(REFUSED, {}).setdefault(side, {})

    def refused_tidy(self) -> None:
        """Drop the empty records `refused` made, so the state holds only real refusals."""
        sides = self.state.get(REFUSED)
        if isinstance(sides, dict):
            for side in [s for s, held in sides.items() if not held]:
                del sides[side]
            if not sides:
                del self.state[REFUSED]

    # `state["left"]`: "<side>:<field>" -> the id of a user of that side with no counterpart
    # whose field the other side kept (the unmapped-user policy "leave"). Once the user is
    # mapped, the issue's next sync carries the field again.
    def left_user(self, side: str, field: str) -> str | None:
        return self.state.get("left", {}).get(f"{side}:{field}")

    def set_left_user(self, side: str, field: str, user_id: str | None) -> None:
        left = self.state.setdefault("left", {})
        if user_id:
            left[f"{side}:{field}"] = user_id
        else:
            left.pop(f"{side}:{field}", None)
            if not left:
                self.state.pop("left")


class CopyPair(models.Model):
    """What a thing on one side and its copy on the other keep (comments, worklogs): the side
    it was written on, and a hash of each as last synced."""

    origin = models.CharField(max_length=8, choices=Side.choices, default=Side.LOCAL)
    local_hash = models.CharField(max_length=64, blank=True)
    remote_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def pair_text(self, what: str) -> str:
        return (
            f"{what} {getattr(self, f'local_{what}_id')} <-> {getattr(self, f'remote_{what}_id')}"
        )


def one_copy_per_side(what: str) -> list[models.UniqueConstraint]:
    """A thing on one side is paired once per issue pair (`uniq_<what>_local|remote`)."""
    return [
        models.UniqueConstraint(
            fields=("issue_link", f"{side}_{what}_id"), name=f"uniq_{what}_{side}"
        )
        for side in ("local", "remote")
    ]


class CommentLink(CopyPair):
    """A comment on one side and its copy on the other, with a hash of each body last synced."""

    issue_link = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="comments")
    local_comment_id = models.CharField(max_length=32, null=True, blank=True)
    remote_comment_id = models.CharField(max_length=32, null=True, blank=True)

    class Meta:
        constraints = one_copy_per_side("comment")

    def __str__(self) -> str:
        return self.pair_text("comment")


class WorklogLink(CopyPair):
    """A worklog on one side and its copy on the other (by the sync account, headed with the
    author), with a digest of each as last synced (time, start, comment words)."""

    issue_link = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="worklogs")
    local_worklog_id = models.CharField(max_length=32, null=True, blank=True)
    remote_worklog_id = models.CharField(max_length=32, null=True, blank=True)

    class Meta:
        constraints = one_copy_per_side("worklog")

    def __str__(self) -> str:
        return self.pair_text("worklog")


class AttachmentStatus(models.TextChoices):
    COPIED = "copied", _("Copied")
    UPLOADING = "uploading", _("Upload under way")
    REFUSED = "refused", _("Refused (not copied)")
    DELETING = "deleting", _("Copy being deleted")


class AttachmentLink(models.Model):
    """An attachment on one side and its copy on the other (or why it has none).

    `upload_started_at` is set before an upload: a retry after a lost answer looks for the
    copy at the target (same name and size, added by the sync account since) before
    uploading again. A refused file (too large, excluded by name) keeps its row, so it is
    not retried on every event.
    """

    issue_link = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="attachments")
    local_attachment_id = models.CharField(max_length=32, null=True, blank=True)
    remote_attachment_id = models.CharField(max_length=32, null=True, blank=True)
    origin = models.CharField(max_length=8, choices=Side.choices, default=Side.LOCAL)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=10, choices=AttachmentStatus.choices, default=AttachmentStatus.UPLOADING
    )
    reason = models.TextField(blank=True)
    upload_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("attachment link")
        verbose_name_plural = _("attachment links")
        constraints = [
            models.UniqueConstraint(
                fields=("issue_link", "local_attachment_id"), name="uniq_attachment_local"
            ),
            models.UniqueConstraint(
                fields=("issue_link", "remote_attachment_id"), name="uniq_attachment_remote"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename}: {self.local_attachment_id} <-> {self.remote_attachment_id}"


class RelationStatus(models.TextChoices):
    LINKED = "linked", _("Mirrored")
    # The link's type (after the organization's `link_type_map`) does not exist at the
    # other site: recorded once, not tried again with every event.
    NO_TYPE = "no_type", _("Not mirrored: the other site lacks the link type")


class RelationLink(models.Model):
    """A Jira issue link between two synced issues and its copy between their copies.

    `outward_pair`'s issue shows the type's outward description ("blocks") toward
    `inward_pair`'s issue, on both sides. `origin` is the side where the link was made; the
    other side's `<side>_link_id` is our copy (empty while the type is missing there).
    """

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="relation_links"
    )
    outward_pair = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="+")
    inward_pair = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="+")
    local_link_id = models.CharField(max_length=32, null=True, blank=True)
    remote_link_id = models.CharField(max_length=32, null=True, blank=True)
    local_type = models.CharField(max_length=255, blank=True)
    remote_type = models.CharField(max_length=255, blank=True)
    origin = models.CharField(max_length=8, choices=Side.choices, default=Side.LOCAL)
    status = models.CharField(
        max_length=10, choices=RelationStatus.choices, default=RelationStatus.LINKED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("issue relation")
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "local_link_id"), name="uniq_relation_local"
            ),
            models.UniqueConstraint(
                fields=("organization", "remote_link_id"), name="uniq_relation_remote"
            ),
        ]

    def __str__(self) -> str:
        return f"issue link {self.local_link_id} <-> {self.remote_link_id}"


class EchoLock(models.Model):
    """We wrote `field` = value (by fingerprint) to `side`; its webhook will be our own echo.

    Committed before the write; consumed once when the echo arrives; expires after a TTL
    longer than Jira's late-retry window. `pending` counts writes of the same value.
    """

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    side = models.CharField(max_length=8, choices=Side.choices)
    issue_id = models.CharField(max_length=32)
    field = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)
    # The fingerprint of the value the field held before our write: a late echo's changelog
    # says it changed *from* this, which tells it apart from a person setting the value again.
    previous = models.CharField(max_length=64, blank=True)
    pending = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "side", "issue_id", "field", "fingerprint"),
                name="uniq_echo_lock",
            )
        ]

    def __str__(self) -> str:
        return f"echo {self.side}:{self.issue_id}.{self.field}"


class SyncResult(models.TextChoices):
    WRITTEN = "written", _("Written")
    NO_CHANGE = "no_change", _("No change")
    ECHO = "echo", _("Echo suppressed")
    CONFLICT = "conflict", _("Conflict resolved")
    ERROR = "error", _("Error")
    SKIPPED = "skipped", _("Skipped")
    CLOSED = "closed", _("Pair closed")


class SyncEvent(models.Model):
    """One unit of sync work, for the operator: what moved where, and how it went."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="sync_events"
    )
    issue_link = models.ForeignKey(
        IssueLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    delivery = models.ForeignKey(
        "webhooks.WebhookDelivery", on_delete=models.SET_NULL, null=True, blank=True
    )
    direction = models.CharField(max_length=8)  # "push" or "pull"
    action = models.CharField(max_length=32)
    fields = models.JSONField(default=list, blank=True)
    result = models.CharField(max_length=10, choices=SyncResult.choices)
    calls = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.direction} {self.action} {self.result}"


class UnmappedUser(models.Model):
    """A user of one side with no counterpart on the other (neither in the organization's
    user map nor found by e-mail), for the admin to map. `side` is where the user lives."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="unmapped_users"
    )
    side = models.CharField(max_length=8, choices=Side.choices)
    user_id = models.CharField(max_length=128)  # accountId (Cloud), name or key (Data Center)
    display_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=254, blank=True)  # when the site shows it
    field = models.CharField(max_length=64, blank=True)  # the field it was last seen in
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("unmapped user")
        verbose_name_plural = _("unmapped users")
        ordering = ("-last_seen",)
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "side", "user_id"), name="uniq_unmapped_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.side}: {self.display_name or self.user_id}"


class DriftKind(models.TextChoices):
    FIELD = "field", _("Field differs")
    COMMENT = "comment", _("Comment differs")
    GONE = "gone", _("Issue gone")


class Drift(models.Model):
    """A linked pair found different by the drift check (`drift.py`): one field, one comment,
    or one side's issue gone (confirmed by a GET by id answering 404). Replaced by each check
    of its organization; deleted once a repair or a later check finds the pair in step."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="drifts"
    )
    issue_link = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="drifts")
    kind = models.CharField(max_length=8, choices=DriftKind.choices)
    # The local field's id ("summary"), "comment <local id|remote id>", or the side whose
    # issue is gone ("local" / "remote").
    field = models.CharField(max_length=128)
    local_value = models.JSONField(null=True, blank=True)
    remote_value = models.JSONField(null=True, blank=True)
    found_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("drift")
        verbose_name_plural = _("drift")
        ordering = ("organization_id", "issue_link_id", "kind", "field")
        constraints = [
            models.UniqueConstraint(
                fields=("issue_link", "kind", "field"), name="uniq_drift_link_field"
            )
        ]

    def __str__(self) -> str:
        return f"{self.issue_link}: {self.kind} {self.field}"


class DriftCheck(models.Model):
    """The last drift check of an organization: when, how many pairs, what it found, and
    the Jira calls it made."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="drift_check"
    )
    checked_at = models.DateTimeField()
    pairs = models.PositiveIntegerField(default=0)
    drifted = models.PositiveIntegerField(default=0)  # pairs with a field or comment differing
    gone = models.PositiveIntegerField(default=0)  # pairs whose issue is gone on a side
    calls = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"drift check of {self.organization_id} at {self.checked_at:%Y-%m-%d %H:%M}"


class ReconcileMark(models.Model):
    """How far catch-up has looked at one side of one project mapping: every issue of that
    side changed before `watermark` (less the overlap) has been compared with its link."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="reconcile_marks"
    )
    project_mapping = models.ForeignKey(
        "organizations.ProjectMapping", on_delete=models.CASCADE, related_name="reconcile_marks"
    )
    side = models.CharField(max_length=8, choices=Side.choices)
    watermark = models.DateTimeField()
    last_run_at = models.DateTimeField()

    class Meta:
        verbose_name = _("reconciliation watermark")
        verbose_name_plural = _("reconciliation watermarks")
        constraints = [
            models.UniqueConstraint(fields=("project_mapping", "side"), name="uniq_reconcile_mark")
        ]

    def __str__(self) -> str:
        return f"{self.side} of mapping {self.project_mapping_id} up to {self.watermark}"


class ReconcileRun(models.Model):
    """One catch-up run for an organization: what it searched, examined and had to heal."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="reconcile_runs"
    )
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    searched = models.PositiveIntegerField(default=0)
    examined = models.PositiveIntegerField(default=0)
    healed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    per_side = models.JSONField(default=dict, blank=True)
    # Why the run stopped before the end (rate limited, ...); "" when it went through.
    stopped = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at",)

    def __str__(self) -> str:
        return f"catch-up {self.started_at:%Y-%m-%d %H:%M} healed {self.healed}"
