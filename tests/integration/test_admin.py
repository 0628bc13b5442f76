import re

import pytest
from django.urls import reverse

from organizations.models import HandshakeStatus, Organization
from tests.conftest import grant

pytestmark = pytest.mark.django_db


def change_url(org: Organization) -> str:
    return reverse("admin:organizations_organization_change", args=[org.pk])


@pytest.fixture
def admin_session(client, superuser):
    client.force_login(superuser)
    return client


def test_the_panel_is_absent_while_push_only(admin_session, make_org):
    org = make_org()
    page = admin_session.get(change_url(org)).content.decode()
    assert 'id="partner-setup"' not in page
    assert org.incoming_secret not in page
    assert "/webhooks/incoming/" not in page
    assert "Turn two-way sync on" in page


def test_the_panel_shows_url_jql_events_and_steps_when_two_way(admin_session, two_way_org):
    page = admin_session.get(change_url(two_way_org)).content.decode()
    assert 'id="partner-setup"' in page
    expected_url = f"{two_way_org.incoming_webhook_url}?secret={two_way_org.incoming_secret}"
    assert expected_url in page
    assert 'id="copy-webhook-url"' in page
    assert "project = &quot;REMOTE_PROJ&quot;" in page
    for event in (
        "jira:issue_created",
        "jira:issue_updated",
        "jira:issue_deleted",
        "comment_created",
        "comment_updated",
        "comment_deleted",
        "worklog_created",
        "worklog_updated",
        "worklog_deleted",
    ):
        assert event in page
    assert "WebHooks" in page
    assert "X-Hub-Signature" in page
    assert 'data-status="pending"' in page


def test_the_list_shows_direction_and_handshake_but_no_secret(admin_session, two_way_org):
    page = admin_session.get(reverse("admin:organizations_organization_changelist"))
    text = page.content.decode()
    assert "Partner" in text and "org-123" in text
    assert "Pending" in text
    assert two_way_org.incoming_secret not in text


def test_view_only_staff_see_the_url_without_its_secret(client, django_user_model, two_way_org):
    staff = django_user_model.objects.create_user(
        username="viewer", password="pw-123456789", is_staff=True
    )
    grant(staff, "view_organization")
    client.force_login(staff)
    page = client.get(change_url(two_way_org)).content.decode()
    assert 'id="partner-setup"' in page
    assert two_way_org.incoming_secret not in page
    assert "Only staff who may change organizations can see the secret." in page


def test_staff_without_permissions_cannot_open_the_page(client, django_user_model, two_way_org):
    staff = django_user_model.objects.create_user(
        username="nobody", password="pw-123456789", is_staff=True
    )
    client.force_login(staff)
    response = client.get(change_url(two_way_org))
    assert response.status_code == 403


def test_adding_an_organization_through_the_admin_uses_the_services(admin_session):
    response = admin_session.post(
        reverse("admin:organizations_organization_add"),
        {
            "public_id": "org-new",
            "name": "New Partner",
            "enabled": "on",
            "remote_base_url": "https://new.atlassian.net",
            "remote_flavor": "cloud",
            "remote_user": "bot@new.example",
            "remote_token": "tok-123",
            "sync_direction": "bidirectional",
            "remote_handshake_token": "",
            "conflict_policy": "later_wins",
            "remote_delete_policy": "comment",
            "local_delete_policy": "comment",
            "target_gone_policy": "unlink",
            "remote_delete_status": "",
            "sync_worklogs": "on",
            "project_mappings-TOTAL_FORMS": "1",
            "project_mappings-INITIAL_FORMS": "0",
            "project_mappings-0-local_project_key": "LOC",
            "project_mappings-0-remote_project_key": "NEW",
            "project_mappings-0-issue_type_map": "{}",
            "project_mappings-0-push_jql": "",
            "project_mappings-0-create_local_issues": "on",
            "field_mappings-TOTAL_FORMS": "0",
            "field_mappings-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    org = Organization.objects.get(public_id="org-new")
    assert org.handshake_status == HandshakeStatus.PENDING
    assert len(org.incoming_secret) >= 43
    assert org.remote_token == "tok-123"
    assert org.project_mappings.get().remote_project_key == "NEW"
    assert org.sync_worklogs is True
    page = admin_session.get(change_url(org)).content.decode()
    assert "project = &quot;NEW&quot;" in page
    assert "tok-123" not in page


def test_an_empty_secret_field_keeps_the_stored_secret(admin_session, make_org):
    org = make_org(remote_token="tok-keep", remote_handshake_token="hook-keep")
    data = {
        "name": "Renamed",
        "enabled": "on",
        "remote_base_url": "",
        "remote_flavor": "cloud",
        "remote_user": "",
        "remote_token": "",
        "sync_direction": "push",
        "remote_handshake_token": "",
        "conflict_policy": "later_wins",
        "remote_delete_policy": "comment",
        "local_delete_policy": "comment",
        "target_gone_policy": "unlink",
        "remote_delete_status": "",
        "project_mappings-TOTAL_FORMS": "0",
        "project_mappings-INITIAL_FORMS": "0",
        "field_mappings-TOTAL_FORMS": "0",
        "field_mappings-INITIAL_FORMS": "0",
    }
    response = admin_session.post(change_url(org), data)
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.name == "Renamed"
    assert org.remote_token == "tok-keep"
    assert org.remote_handshake_token == "hook-keep"


def test_buttons_turn_two_way_on_and_off_and_rotate(admin_session, make_org):
    org = make_org()
    admin_session.post(reverse("admin:organizations_organization_two_way_on", args=[org.pk]))
    org.refresh_from_db()
    assert org.handshake_status == HandshakeStatus.PENDING
    page = admin_session.get(change_url(org)).content.decode()
    first_url = re.search(r'id="incoming-webhook-url"[^>]*value="([^"]+)"', page).group(1)

    admin_session.post(reverse("admin:organizations_organization_rotate_secret", args=[org.pk]))
    page = admin_session.get(change_url(org)).content.decode()
    second_url = re.search(r'id="incoming-webhook-url"[^>]*value="([^"]+)"', page).group(1)
    assert first_url != second_url
    assert "The previous secret is accepted until" in page

    admin_session.post(reverse("admin:organizations_organization_two_way_off", args=[org.pk]))
    org.refresh_from_db()
    assert org.sync_direction == "push"
    assert org.handshake_status == HandshakeStatus.NONE


def test_buttons_refuse_get(admin_session, make_org):
    org = make_org()
    url = reverse("admin:organizations_organization_two_way_on", args=[org.pk])
    assert admin_session.get(url).status_code == 405
    org.refresh_from_db()
    assert org.sync_direction == "push"


def test_list_actions(admin_session, make_org):
    a, b = make_org(name="A"), make_org(name="B")
    changelist = reverse("admin:organizations_organization_changelist")
    admin_session.post(
        changelist, {"action": "enable_two_way_action", "_selected_action": [a.pk, b.pk]}
    )
    assert set(Organization.objects.values_list("handshake_status", flat=True)) == {"pending"}
    old = Organization.objects.get(pk=a.pk).incoming_secret
    admin_session.post(changelist, {"action": "rotate_secret_action", "_selected_action": [a.pk]})
    assert Organization.objects.get(pk=a.pk).incoming_secret != old
    admin_session.post(changelist, {"action": "disable_two_way_action", "_selected_action": [a.pk]})
    assert Organization.objects.get(pk=a.pk).sync_direction == "push"


def test_the_change_page_shows_sync_activity(admin_session, two_way_org):
    from sync.models import SyncEvent

    SyncEvent.objects.create(
        organization=two_way_org,
        direction="pull",
        action="update",
        fields=["summary"],
        result="written",
        calls=3,
    )
    SyncEvent.objects.create(
        organization=two_way_org, direction="push", action="echo", result="echo"
    )
    SyncEvent.objects.create(
        organization=two_way_org,
        direction="pull",
        action="update",
        fields=["priority"],
        result="conflict",
        message="priority: remote side's value kept",
    )
    page = admin_session.get(change_url(two_way_org)).content.decode()
    assert 'id="activity-written">1<' in page
    assert 'id="activity-echo">1<' in page
    assert 'id="activity-conflict">1<' in page
    assert "priority: remote side&#x27;s value kept" in page


def test_deliveries_can_be_retried_from_the_admin(
    admin_session, two_way_org, django_capture_on_commit_callbacks
):
    from webhooks.models import WebhookDelivery

    delivery = WebhookDelivery.objects.create(
        source="partner",
        organization=two_way_org,
        dedupe_key="x",
        body="{}",
        status="dead",
        attempts=8,
        last_error="PUT ... -> 400 priority: invalid",
    )
    changelist = reverse("admin:webhooks_webhookdelivery_changelist")
    page = admin_session.get(changelist).content.decode()
    assert "priority: invalid" in page
    with django_capture_on_commit_callbacks() as callbacks:
        admin_session.post(
            changelist, {"action": "retry_action", "_selected_action": [delivery.pk]}
        )
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    assert len(callbacks) == 1
