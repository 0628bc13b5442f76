from django.db import models
from django.utils.translation import gettext_lazy as _


class DeliverySource(models.TextChoices):
    LOCAL = "local", _("Local Jira")
    PARTNER = "partner", _("Partner Jira")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    DONE = "done", _("Done")
    ECHO = "echo", _("Echo (suppressed)")
    IGNORED = "ignored", _("Ignored")
    FAILED = "failed", _("Failed (will retry)")
    DEAD = "dead", _("Dead (gave up)")


class WebhookDelivery(models.Model):
    """The inbox: one row per accepted webhook delivery, stored before it is answered."""

    source = models.CharField(max_length=8, choices=DeliverySource.choices)
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    # `<source>:<org pk>:<X-Atlassian-Webhook-Identifier or sha256 of the body>`.
    dedupe_key = models.CharField(max_length=200, unique=True)
    event_type = models.CharField(max_length=64, blank=True)
    issue_id = models.CharField(max_length=32, blank=True)
    issue_key = models.CharField(max_length=64, blank=True)
    body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=12,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(default=0)
    # Jira calls spent processing it (all attempts): the cost of a change, or of an echo (0).
    calls = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-received_at",)
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(fields=("organization", "received_at")),
            # The pending deliveries of an issue, in order: what the relay looks for ahead of
            # one (pending_relay._BEHIND_SQL) and a task takes along (tasks.claim_behind),
            # without reading every pending row when a backlog waits.
            models.Index(
                fields=("issue_id", "source", "id"),
                condition=models.Q(status="pending"),
                name="webhooks_pending_issue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type or '?'} {self.issue_key or self.issue_id} ({self.status})"


class AuthFailureBlock(models.Model):
    """A client blocked from one target by its failed authentications (`core.throttle`), until
    its window ends: what the INSERT of a delivery accepted on kept credentials checks, in
    place of reading the throttle's counter (`webhooks.blocks`)."""

    # `core.throttle.key_digest` of (client address, target).
    key = models.CharField(max_length=32, unique=True)
    until = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("blocked webhook client")
        verbose_name_plural = _("blocked webhook clients")

    def __str__(self) -> str:
        return f"{self.key} until {self.until:%Y-%m-%d %H:%M:%S}"
