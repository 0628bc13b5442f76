"""The partner's webhook endpoint: who may post, and what is stored."""

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from organizations import services
from organizations.models import ConnectionType, HandshakeStatus, Organization
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jira-webhooks"


def fixture_body(name: str = "webhook-cloud-issue-updated-custom-field.json") -> bytes:
    payload = json.loads((FIXTURES / "mattermost" / name).read_text())
    payload.setdefault("issue", {}).setdefault("fields", {})["project"] = {"key": "REMOTE_PROJ"}
    return json.dumps(payload).encode()


def post(client, org: Organization, body: bytes, secret: str | None = None, **headers):
    secret = org.incoming_secret if secret is None else secret
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(
        f"/webhooks/incoming/{org.public_id}/?secret={secret}",
        data=body,
        content_type=headers.pop("content_type", "application/json"),
        **extra,
    )


def test_an_authenticated_delivery_is_stored_and_completes_the_handshake(client, two_way_org):
    body = fixture_body()
    response = post(client, two_way_org, body, **{"X-Atlassian-Webhook-Identifier": "abc-1"})
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert delivery.organization == two_way_org
    assert delivery.status == "pending"
    assert delivery.body.encode() == body
    assert delivery.event_type == "jira:issue_updated"
    two_way_org.refresh_from_db()
    assert two_way_org.handshake_status == HandshakeStatus.ACTIVE
    assert two_way_org.handshake_activated_at is not None
    assert two_way_org.last_delivery_at is not None


def test_a_repeated_delivery_is_stored_once(client, two_way_org):
    body = fixture_body()
    first = post(client, two_way_org, body, **{"X-Atlassian-Webhook-Identifier": "same"})
    again = post(
        client,
        two_way_org,
        body,
        **{"X-Atlassian-Webhook-Identifier": "same", "X-Atlassian-Webhook-Retry": "1"},
    )
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert WebhookDelivery.objects.count() == 1


def test_an_unknown_organization_and_a_wrong_secret_get_the_same_answer(client, two_way_org):
    wrong = post(client, two_way_org, fixture_body(), secret="wrong")
    unknown = client.post(
        "/webhooks/incoming/org-nope/?secret=wrong",
        data=fixture_body(),
        content_type="application/json",
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert two_way_org.incoming_secret not in wrong.content.decode()
    assert WebhookDelivery.objects.count() == 0


def test_a_push_only_organization_refuses_deliveries(client, two_way_org):
    services.organization_disable_two_way(organization=two_way_org)
    response = post(client, two_way_org, fixture_body())
    assert response.status_code == 403
    assert response.json()["error"] == "two_way_off"
    assert WebhookDelivery.objects.count() == 0


def test_the_old_secret_works_inside_the_grace_period_only(client, two_way_org):
    old = two_way_org.incoming_secret
    org = services.organization_rotate_secret(organization=two_way_org)
    assert post(client, org, fixture_body(), secret=old).status_code == 202
    assert post(client, org, fixture_body() + b" ", secret=org.incoming_secret).status_code == 202
    Organization.objects.filter(pk=org.pk).update(
        previous_secret_valid_until=timezone.now() - timedelta(seconds=1)
    )
    response = post(client, org, fixture_body() + b"  ", secret=old)
    assert response.status_code == 401
    assert WebhookDelivery.objects.count() == 2


def test_both_old_secrets_work_after_two_rotations_inside_the_grace_period(client, two_way_org):
    first = two_way_org.incoming_secret
    org = services.organization_rotate_secret(organization=two_way_org)
    second = org.incoming_secret
    org = services.organization_rotate_secret(organization=org)
    assert post(client, org, fixture_body(), secret=first).status_code == 202
    assert post(client, org, fixture_body() + b" ", secret=second).status_code == 202
    assert post(client, org, fixture_body() + b"  ", secret=org.incoming_secret).status_code == 202
    assert WebhookDelivery.objects.count() == 3


def test_a_signature_is_checked_when_the_partner_secret_is_stored(client, two_way_org):
    org = services.organization_update(
        organization=two_way_org, data={"remote_handshake_token": "hook-secret"}
    )
    body = fixture_body()
    good = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    bad = post(client, org, body, **{"X-Hub-Signature": "sha256=" + "0" * 64})
    assert bad.status_code == 401 and bad.json()["error"] == "signature_invalid"
    assert WebhookDelivery.objects.count() == 0
    # Without require_signature, an unsigned delivery is accepted.
    assert post(client, org, body).status_code == 202
    assert post(client, org, body + b" ", **{"X-Hub-Signature": good}).status_code == 401
    good2 = "sha256=" + hmac.new(b"hook-secret", body + b" ", hashlib.sha256).hexdigest()
    assert post(client, org, body + b" ", **{"X-Hub-Signature": good2}).status_code == 202


def test_a_required_signature_refuses_unsigned_deliveries(client, two_way_org):
    org = services.organization_update(
        organization=two_way_org,
        data={"remote_handshake_token": "hook-secret", "require_signature": True},
    )
    response = post(client, org, fixture_body())
    assert response.status_code == 401 and response.json()["error"] == "signature_missing"
    assert WebhookDelivery.objects.count() == 0
    org.refresh_from_db()
    assert org.handshake_status == HandshakeStatus.PENDING


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_bad_bodies_are_refused_and_nothing_is_stored(
    client, two_way_org, body, content_type, status, error
):
    response = client.post(
        f"/webhooks/incoming/{two_way_org.public_id}/?secret={two_way_org.incoming_secret}",
        data=body,
        content_type=content_type,
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert WebhookDelivery.objects.count() == 0


def test_a_huge_body_is_refused(client, two_way_org, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = json.dumps({"webhookEvent": "jira:issue_updated", "pad": "x" * 2000}).encode()
    response = post(client, two_way_org, body)
    assert response.status_code == 413
    assert WebhookDelivery.objects.count() == 0


def test_unknown_events_and_unmapped_projects_are_recorded_as_ignored(client, two_way_org):
    unknown = json.dumps({"webhookEvent": "jira:version_released", "version": {}}).encode()
    assert post(client, two_way_org, unknown).status_code == 200
    payload = json.loads(fixture_body())
    payload["issue"]["fields"]["project"] = {"key": "OTHER"}
    assert post(client, two_way_org, json.dumps(payload).encode()).status_code == 200
    statuses = list(WebhookDelivery.objects.values_list("status", "last_error"))
    assert [s for s, _ in statuses] == ["ignored", "ignored"]
    reasons = " ".join(e for _, e in statuses)
    assert "not handled" in reasons and "not mapped" in reasons


def test_a_disabled_organization_refuses_deliveries(client, two_way_org):
    org = services.organization_update(organization=two_way_org, data={"enabled": False})
    response = post(client, org, fixture_body())
    assert response.status_code == 403
    assert response.json()["error"] == "organization_disabled"
    assert WebhookDelivery.objects.count() == 0


def test_an_organization_connected_app_to_app_refuses_jira_webhooks(client, two_way_org):
    """Scenario B: the partner's changes come as signed messages from its own install; a Jira
    webhook posted with the organization's secret is refused, and nothing is stored."""
    Organization.objects.filter(pk=two_way_org.pk).update(
        connection_type=ConnectionType.APP, handshake_status=HandshakeStatus.PENDING
    )
    response = post(client, two_way_org, fixture_body())
    assert response.status_code == 403
    assert response.json()["error"] == "app_connection"
    assert WebhookDelivery.objects.count() == 0
    two_way_org.refresh_from_db()
    assert two_way_org.handshake_status == HandshakeStatus.PENDING


def test_refusals_never_echo_a_secret(client, two_way_org):
    org = services.organization_update(
        organization=two_way_org, data={"remote_handshake_token": "hook-secret"}
    )
    answers = [
        post(client, org, fixture_body(), secret="wrong-secret"),
        post(client, org, fixture_body(), **{"X-Hub-Signature": "sha256=00"}),
        post(client, org, b"{bad"),
    ]
    for answer in answers:
        text = answer.content.decode()
        assert answer.status_code in (400, 401)
        for secret in (org.incoming_secret, "hook-secret", "wrong-secret"):
            assert secret not in text
    assert WebhookDelivery.objects.count() == 0


def test_an_accepted_delivery_is_enqueued_after_commit(
    client, two_way_org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        assert post(client, two_way_org, fixture_body()).status_code == 202
    assert len(callbacks) == 1


def test_a_data_center_comment_event_stores_the_issue_id_from_the_comment_link(client, two_way_org):
    # Data Center's comment_* bodies carry no `issue`: only the comment's `self` link names it.
    body = (FIXTURES / "mattermost" / "webhook-server-comment-created.json").read_bytes()
    response = post(client, two_way_org, body)
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "comment_created"
    assert delivery.status == "pending"
    assert delivery.issue_id == "10013"
    assert delivery.issue_key == ""


def _accepted_then(client, org, change) -> object:
    """One delivery accepted (so the process has seen the organization), then `change`, then
    the very next delivery: its answer."""
    assert (
        post(client, org, fixture_body(), **{"X-Atlassian-Webhook-Identifier": "a"}).status_code
        == 202
    )
    secret = org.incoming_secret
    change()
    return post(
        client, org, fixture_body(), secret=secret, **{"X-Atlassian-Webhook-Identifier": "b"}
    )


def test_a_rotated_out_secret_is_refused_at_the_very_next_delivery(client, two_way_org):
    def rotate():
        services.organization_rotate_secret(organization=two_way_org, grace_period=timedelta(0))

    assert _accepted_then(client, two_way_org, rotate).status_code == 401
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (
            lambda org: services.organization_update(organization=org, data={"enabled": False}),
            403,
            "organization_disabled",
        ),
        (lambda org: services.organization_disable_two_way(organization=org), 403, "two_way_off"),
        (lambda org: services.organization_delete(organization=org), 401, "unauthorized"),
    ],
    ids=["disabled", "two-way-off", "deleted"],
)
def test_a_change_to_the_organization_applies_at_the_very_next_delivery(
    client, two_way_org, change, status, code
):
    response = _accepted_then(client, two_way_org, lambda: change(two_way_org))
    assert response.status_code == status
    assert response.json()["error"] == code
    assert WebhookDelivery.objects.filter(dedupe_key__endswith=":b").count() == 0


def test_a_project_unmapped_or_mapped_applies_at_the_very_next_delivery(client, two_way_org):
    def send(n: int) -> int:
        headers = {"X-Atlassian-Webhook-Identifier": f"m-{n}"}
        return post(client, two_way_org, fixture_body(), **headers).status_code

    assert send(1) == 202
    services.project_mapping_delete(mapping=two_way_org.project_mappings.get())
    assert send(2) == 200  # stored as ignored: not mapped
    services.project_mapping_create(
        organization=two_way_org, local_project_key="LOC", remote_project_key="REMOTE_PROJ"
    )
    assert send(3) == 202
    statuses = WebhookDelivery.objects.order_by("pk").values_list("status", flat=True)
    assert list(statuses) == ["pending", "ignored", "pending"]
