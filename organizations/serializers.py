"""JSON shapes of the config API, with the seed's camelCase names."""

from rest_framework import serializers

from . import selectors
from .models import (
    ConflictPolicy,
    DeletePolicy,
    FieldDirection,
    FieldMapping,
    HandshakeStatus,
    JiraFlavor,
    Organization,
    ProjectMapping,
    SyncDirection,
    TargetGonePolicy,
    UnmappedUserPolicy,
)


class ProjectMappingSerializer(serializers.ModelSerializer):
    localProjectKey = serializers.CharField(source="local_project_key", max_length=255)
    remoteProjectKey = serializers.CharField(source="remote_project_key", max_length=255)
    issueTypeMap = serializers.JSONField(source="issue_type_map", required=False)
    pushJql = serializers.CharField(source="push_jql", required=False, allow_blank=True)
    createLocalIssues = serializers.BooleanField(source="create_local_issues", required=False)

    class Meta:
        model = ProjectMapping
        fields = (
            "id",
            "localProjectKey",
            "remoteProjectKey",
            "issueTypeMap",
            "pushJql",
            "createLocalIssues",
        )
        read_only_fields = ("id",)


class FieldMappingSerializer(serializers.ModelSerializer):
    localField = serializers.CharField(source="local_field", max_length=64)
    remoteField = serializers.CharField(source="remote_field", max_length=64)
    direction = serializers.ChoiceField(choices=FieldDirection.choices, required=False)
    valueMap = serializers.JSONField(source="value_map", required=False)

    class Meta:
        model = FieldMapping
        fields = ("id", "localField", "remoteField", "direction", "valueMap")
        read_only_fields = ("id",)


class OrganizationInputSerializer(serializers.Serializer):
    """What a client may write. Secrets are write-only here."""

    id = serializers.CharField(source="public_id", max_length=63, required=False)
    name = serializers.CharField(max_length=200)
    enabled = serializers.BooleanField(required=False)
    syncDirection = serializers.ChoiceField(
        source="sync_direction", choices=SyncDirection.choices, required=False
    )
    remoteBaseUrl = serializers.URLField(source="remote_base_url", required=False, allow_blank=True)
    remoteFlavor = serializers.ChoiceField(
        source="remote_flavor", choices=JiraFlavor.choices, required=False
    )
    remoteUser = serializers.CharField(
        source="remote_user", max_length=254, required=False, allow_blank=True
    )
    remoteToken = serializers.CharField(
        source="remote_token", required=False, allow_blank=True, write_only=True
    )
    remoteTokenExpiresAt = serializers.DateField(
        source="remote_token_expires_at", required=False, allow_null=True
    )
    remoteHandshakeToken = serializers.CharField(
        source="remote_handshake_token", required=False, allow_blank=True, write_only=True
    )
    requireSignature = serializers.BooleanField(source="require_signature", required=False)
    conflictPolicy = serializers.ChoiceField(
        source="conflict_policy", choices=ConflictPolicy.choices, required=False
    )
    remoteDeletePolicy = serializers.ChoiceField(
        source="remote_delete_policy", choices=DeletePolicy.choices, required=False
    )
    remoteDeleteStatus = serializers.CharField(
        source="remote_delete_status", max_length=64, required=False, allow_blank=True
    )
    localDeletePolicy = serializers.ChoiceField(
        source="local_delete_policy", choices=DeletePolicy.choices, required=False
    )
    localDeleteStatus = serializers.CharField(
        source="local_delete_status", max_length=64, required=False, allow_blank=True
    )
    targetGonePolicy = serializers.ChoiceField(
        source="target_gone_policy", choices=TargetGonePolicy.choices, required=False
    )
    copyRestrictedComments = serializers.BooleanField(
        source="copy_restricted_comments", required=False
    )
    relayPartnerIssues = serializers.BooleanField(source="relay_partner_issues", required=False)
    syncWorklogs = serializers.BooleanField(source="sync_worklogs", required=False)
    createMissingVersions = serializers.BooleanField(
        source="create_missing_versions", required=False
    )
    copyAttachments = serializers.BooleanField(source="copy_attachments", required=False)
    attachmentMaxBytes = serializers.IntegerField(
        source="attachment_max_bytes", min_value=0, required=False
    )
    attachmentExclude = serializers.CharField(
        source="attachment_exclude", max_length=500, required=False, allow_blank=True
    )
    userMap = serializers.JSONField(source="user_map", required=False)
    linkTypeMap = serializers.JSONField(source="link_type_map", required=False)
    unmappedUserPolicy = serializers.ChoiceField(
        source="unmapped_user_policy", choices=UnmappedUserPolicy.choices, required=False
    )
    defaultLocalUser = serializers.CharField(
        source="default_local_user", max_length=128, required=False, allow_blank=True
    )
    defaultRemoteUser = serializers.CharField(
        source="default_remote_user", max_length=128, required=False, allow_blank=True
    )


class OrganizationOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    syncDirection = serializers.ChoiceField(source="sync_direction", choices=SyncDirection.choices)
    incomingSecret = serializers.SerializerMethodField()
    incomingWebhookUrl = serializers.CharField(source="incoming_webhook_url")
    handshakeStatus = serializers.ChoiceField(
        source="handshake_status", choices=HandshakeStatus.choices
    )
    handshakeActivatedAt = serializers.DateTimeField(source="handshake_activated_at")
    connectionType = serializers.CharField(source="connection_type")
    # Write-only: always null in answers (kept for the seed's shape); see hasRemoteHandshakeToken.
    remoteHandshakeToken = serializers.SerializerMethodField()
    hasRemoteHandshakeToken = serializers.SerializerMethodField()
    requireSignature = serializers.BooleanField(source="require_signature")
    conflictPolicy = serializers.CharField(source="conflict_policy")
    remoteDeletePolicy = serializers.CharField(source="remote_delete_policy")
    remoteDeleteStatus = serializers.CharField(source="remote_delete_status")
    localDeletePolicy = serializers.CharField(source="local_delete_policy")
    localDeleteStatus = serializers.CharField(source="local_delete_status")
    targetGonePolicy = serializers.CharField(source="target_gone_policy")
    copyRestrictedComments = serializers.BooleanField(source="copy_restricted_comments")
    relayPartnerIssues = serializers.BooleanField(source="relay_partner_issues")
    syncWorklogs = serializers.BooleanField(source="sync_worklogs")
    createMissingVersions = serializers.BooleanField(source="create_missing_versions")
    copyAttachments = serializers.BooleanField(source="copy_attachments")
    attachmentMaxBytes = serializers.IntegerField(source="attachment_max_bytes")
    attachmentExclude = serializers.CharField(source="attachment_exclude")
    userMap = serializers.JSONField(source="user_map")
    linkTypeMap = serializers.JSONField(source="link_type_map")
    unmappedUserPolicy = serializers.CharField(source="unmapped_user_policy")
    defaultLocalUser = serializers.CharField(source="default_local_user")
    defaultRemoteUser = serializers.CharField(source="default_remote_user")
    remoteBaseUrl = serializers.CharField(source="remote_base_url")
    remoteFlavor = serializers.CharField(source="remote_flavor")
    remoteUser = serializers.CharField(source="remote_user")
    hasRemoteToken = serializers.SerializerMethodField()
    remoteTokenSetAt = serializers.DateTimeField(source="remote_token_set_at")
    remoteTokenExpiresAt = serializers.DateField(source="remote_token_expires_at")
    credentialsRejectedAt = serializers.DateTimeField(source="credentials_rejected_at")
    credentialsRejectedMessage = serializers.CharField(source="credentials_rejected_message")
    remoteHandshakeTokenSetAt = serializers.DateTimeField(source="remote_handshake_token_set_at")
    secretRotatedAt = serializers.DateTimeField(source="secret_rotated_at")
    previousSecretValidUntil = serializers.DateTimeField(source="previous_secret_valid_until")
    lastDeliveryAt = serializers.DateTimeField(source="last_delivery_at")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    projectMappings = ProjectMappingSerializer(source="project_mappings", many=True)
    fieldMappings = FieldMappingSerializer(source="field_mappings", many=True)
    weSend = serializers.SerializerMethodField()
    theySend = serializers.SerializerMethodField()

    def _offers(self, obj: Organization, side: str) -> dict | None:
        if not obj.is_app:
            return None
        offers = selectors.organization_offers(organization=obj)
        if offers is None:
            return None
        found = offers[side]
        return {
            "inEffect": found["in_effect"],
            "announced": found["announced"],
            "pending": found["pending"],
            "added": found["added"],
        }

    def get_weSend(self, obj: Organization) -> dict | None:  # noqa: N802
        """Scenario B: what we send, in effect (as the partner accepted it) and as last
        announced (`pending`: more than before, awaiting the partner's acceptance)."""
        return self._offers(obj, "we_send")

    def get_theySend(self, obj: Organization) -> dict | None:  # noqa: N802
        """Scenario B: what the partner sends, as we accepted it (only that is applied), and
        its last announcement (`pending` until accepted: POST .../accept-offer/)."""
        return self._offers(obj, "they_send")

    def _show_secrets(self) -> bool:
        # The incoming secret appears in the detail view only, never in lists, and only to
        # users who may change organizations (the view decides). The partner's secrets
        # (API token, webhook secret) are write-only: never in any answer.
        return bool(self.context.get("show_secrets"))

    def get_incomingSecret(self, obj: Organization) -> str | None:  # noqa: N802
        return obj.incoming_secret if self._show_secrets() else None

    def get_remoteHandshakeToken(self, obj: Organization) -> str | None:  # noqa: N802
        return None

    def get_hasRemoteHandshakeToken(self, obj: Organization) -> bool:  # noqa: N802
        return bool(obj.remote_handshake_token)

    def get_hasRemoteToken(self, obj: Organization) -> bool:  # noqa: N802
        return bool(obj.remote_token)


class ConnectionAcceptInputSerializer(serializers.Serializer):
    """Accept a partner install's connection invitation (Scenario B)."""

    invitation = serializers.CharField(max_length=16_384, trim_whitespace=True)
    name = serializers.CharField(max_length=200)
    projectMappings = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(max_length=255)),
        min_length=1,
        max_length=100,
    )
    syncDirection = serializers.ChoiceField(
        choices=SyncDirection.choices, required=False, default=SyncDirection.PUSH
    )

    def validate_projectMappings(self, value):  # noqa: N802
        mappings, local, remote = [], set(), set()
        for item in value:
            serializer = ProjectMappingSerializer(data=item)
            serializer.is_valid(raise_exception=True)
            pair = {
                "local_project_key": serializer.validated_data["local_project_key"],
                "remote_project_key": serializer.validated_data["remote_project_key"],
            }
            if pair["local_project_key"] in local or pair["remote_project_key"] in remote:
                raise serializers.ValidationError("Map each project once.")
            local.add(pair["local_project_key"])
            remote.add(pair["remote_project_key"])
            mappings.append(pair)
        return mappings
