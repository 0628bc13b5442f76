from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from organizations import selectors, services
from organizations.models import HandshakeStatus, Organization

pytestmark = pytest.mark.django_db


def raw_column(org: Organization, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM organizations_organization WHERE id = %s",  # noqa: S608
            [org.pk],
        )
        return cursor.fetchone()[0]


def test_a_new_organization_gets_a_strong_unique_secret(make_org):
    orgs = [make_org(name=f"Org {i}") for i in range(20)]
    secrets = {org.incoming_secret for org in orgs}
    assert len(secrets) == 20
    assert all(len(s) >= 43 for s in secrets)


def test_secrets_are_encrypted_in_the_database_columns(make_org):
    org = make_org(remote_token="partner-api-token", remote_handshake_token="hook-secret")
    for column, plain in (
        ("incoming_secret", org.incoming_secret),
        ("remote_token", "partner-api-token"),
        ("remote_handshake_token", "hook-secret"),
    ):
        stored = raw_column(org, column)
        assert stored.startswith("enc1:")
        assert plain not in stored
    reloaded = Organization.objects.get(pk=org.pk)
    assert reloaded.remote_token == "partner-api-token"
    assert reloaded.incoming_secret == org.incoming_secret


def test_secrets_do_not_appear_in_the_string_form(make_org):
    org = make_org(remote_token="partner-api-token")
    assert org.incoming_secret not in str(org)
    assert "partner-api-token" not in repr(org)


def test_push_is_the_default_with_no_handshake(make_org):
    org = make_org()
    assert org.sync_direction == "push"
    assert org.handshake_status == HandshakeStatus.NONE


def test_creating_a_two_way_organization_waits_for_the_partner(make_org):
    org = make_org(sync_direction="bidirectional")
    assert org.handshake_status == HandshakeStatus.PENDING
    assert org.incoming_secret


def test_every_handshake_transition(make_org):
    org = make_org()
    # none -> pending: two-way turned on.
    org = services.organization_enable_two_way(organization=org)
    assert org.handshake_status == HandshakeStatus.PENDING
    assert org.handshake_activated_at is None
    # pending -> active: the first authenticated delivery.
    org = services.organization_record_delivery(organization=org)
    assert org.handshake_status == HandshakeStatus.ACTIVE
    assert org.handshake_activated_at is not None
    activated = org.handshake_activated_at
    # active stays active on later deliveries, and on turning two-way on again.
    org = services.organization_record_delivery(organization=org)
    org = services.organization_enable_two_way(organization=org)
    assert org.handshake_status == HandshakeStatus.ACTIVE
    assert org.handshake_activated_at == activated
    # active -> none: back to push.
    org = services.organization_disable_two_way(organization=org)
    assert org.handshake_status == HandshakeStatus.NONE
    assert org.handshake_activated_at is None
    # none -> pending again: the partner has to be heard from anew.
    org = services.organization_enable_two_way(organization=org)
    assert org.handshake_status == HandshakeStatus.PENDING
    # pending -> none.
    org = services.organization_disable_two_way(organization=org)
    assert org.handshake_status == HandshakeStatus.NONE


def test_a_delivery_while_push_only_does_not_start_a_handshake(make_org):
    org = services.organization_record_delivery(organization=make_org())
    assert org.handshake_status == HandshakeStatus.NONE
    assert org.last_delivery_at is not None


def test_turning_two_way_on_generates_a_missing_secret(make_org):
    org = make_org()
    Organization.objects.filter(pk=org.pk).update(incoming_secret="")
    org.refresh_from_db()
    assert org.incoming_secret == ""
    org = services.organization_enable_two_way(organization=org)
    assert len(org.incoming_secret) >= 43


def test_turning_two_way_on_keeps_an_existing_secret(make_org):
    org = make_org()
    secret = org.incoming_secret
    org = services.organization_enable_two_way(organization=org)
    assert org.incoming_secret == secret


def test_rotation_keeps_the_old_secret_valid_for_the_grace_period(make_org):
    org = make_org(sync_direction="bidirectional")
    old = org.incoming_secret
    org = services.organization_rotate_secret(organization=org, grace_period=timedelta(hours=1))
    new = org.incoming_secret
    assert new != old
    assert selectors.organization_secret_matches(organization=org, secret=new)
    assert selectors.organization_secret_matches(organization=org, secret=old)
    assert not selectors.organization_secret_matches(organization=org, secret="guess")
    assert not selectors.organization_secret_matches(organization=org, secret="")
    # After the grace period only the new secret is valid.
    Organization.objects.filter(pk=org.pk).update(
        previous_secret_valid_until=timezone.now() - timedelta(seconds=1)
    )
    org.refresh_from_db()
    assert selectors.organization_secret_matches(organization=org, secret=new)
    assert not selectors.organization_secret_matches(organization=org, secret=old)


def test_the_default_grace_period_comes_from_settings(make_org, settings):
    settings.SECRET_ROTATION_GRACE_SECONDS = 600
    before = timezone.now()
    org = services.organization_rotate_secret(organization=make_org())
    assert org.previous_secret_valid_until - before >= timedelta(seconds=600)
    assert org.previous_secret_valid_until - before < timedelta(seconds=610)


def test_a_second_rotation_keeps_the_first_old_secret_until_its_own_grace_ends(make_org):
    org = make_org()
    first = org.incoming_secret
    org = services.organization_rotate_secret(organization=org, grace_period=timedelta(hours=1))
    second = org.incoming_secret
    org = services.organization_rotate_secret(organization=org, grace_period=timedelta(hours=3))
    third = org.incoming_secret
    org.refresh_from_db()
    for secret in (first, second, third):
        assert selectors.organization_secret_matches(organization=org, secret=secret)
    assert not selectors.organization_secret_matches(organization=org, secret="guess")
    # Two hours on: the first secret's grace (1 h) is over, the second's (3 h) is not.
    later = timezone.now() + timedelta(hours=2)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert not selectors.organization_secret_matches(organization=org, secret=first)
        assert selectors.organization_secret_matches(organization=org, secret=second)
        assert selectors.organization_secret_matches(organization=org, secret=third)
        # A rotation then drops the expired one from storage.
        org = services.organization_rotate_secret(organization=org)
    stored = Organization.objects.get(pk=org.pk).previous_incoming_secrets
    assert first not in stored and second in stored and third in stored
    # The shown "accepted until" is the latest expiry of any previous secret.
    assert org.previous_secret_valid_until >= later + timedelta(hours=23)


def test_previous_secrets_are_stored_encrypted(make_org):
    from django.db import connection

    org = make_org()
    first = org.incoming_secret
    services.organization_rotate_secret(organization=org)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT previous_incoming_secrets FROM organizations_organization WHERE id = %s",
            [org.pk],
        )
        (raw,) = cursor.fetchone()
    assert raw.startswith("enc1:") and first not in raw


def test_the_number_of_previous_secrets_is_bounded(make_org):
    org = make_org()
    secrets = []
    for _ in range(services.MAX_PREVIOUS_SECRETS + 3):
        secrets.append(org.incoming_secret)
        org = services.organization_rotate_secret(organization=org)
    org.refresh_from_db()
    kept = [s for s in secrets if selectors.organization_secret_matches(organization=org, secret=s)]
    assert kept == secrets[-services.MAX_PREVIOUS_SECRETS :]


def test_a_zero_grace_period_invalidates_the_old_secret_at_once(make_org):
    org = make_org()
    old = org.incoming_secret
    org = services.organization_rotate_secret(organization=org, grace_period=timedelta(0))
    assert not selectors.organization_secret_matches(organization=org, secret=old)


def test_requiring_a_signature_needs_the_partner_webhook_secret(make_org):
    with pytest.raises(ValidationError) as excinfo:
        make_org(require_signature=True)
    assert "require_signature" in excinfo.value.message_dict
    org = make_org(require_signature=True, remote_handshake_token="hook-secret")
    assert org.require_signature


def test_the_partner_jql_names_the_mapped_partner_projects(make_org):
    org = make_org()
    assert "YOUR_PROJECT_KEY" in selectors.organization_partner_jql(organization=org)
    services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REMOTE_PROJ"
    )
    assert selectors.organization_partner_jql(organization=org) == 'project = "REMOTE_PROJ"'
    services.project_mapping_create(
        organization=org, local_project_key="LOC2", remote_project_key="ABC"
    )
    assert (
        selectors.organization_partner_jql(organization=org) == 'project in ("ABC", "REMOTE_PROJ")'
    )


def test_mappings_are_validated(make_org):
    org = make_org()
    with pytest.raises(ValidationError) as excinfo:
        services.project_mapping_create(
            organization=org, local_project_key="lower", remote_project_key="OK"
        )
    assert "local_project_key" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        services.field_mapping_create(
            organization=org,
            local_field="priority",
            remote_field="priority",
            value_map={"High": "Major", "Highest": "Major"},
        )
    assert "value_map" in excinfo.value.message_dict
    # Read one way only, a many-to-one map is fine.
    mapping = services.field_mapping_create(
        organization=org,
        local_field="priority",
        remote_field="priority",
        direction="push",
        value_map={"High": "Major", "Highest": "Major"},
    )
    assert mapping.pk
    with pytest.raises(ValidationError) as excinfo:
        services.field_mapping_create(
            organization=org, local_field="nonsense", remote_field="customfield_10010"
        )
    assert "local_field" in excinfo.value.message_dict
