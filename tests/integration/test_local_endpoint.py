"""Our own Jira's webhook endpoint (the push direction)."""

import hashlib
import hmac
import json

import pytest

from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

BODY = json.dumps(
    {
        "timestamp": 1700000000000,
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": "10001", "key": "LOC-1", "fields": {"project": {"key": "LOC"}}},
    }
).encode()


@pytest.fixture(autouse=True)
def local_secret(settings):
    settings.LOCAL_WEBHOOK_SECRET = "local-secret"


def post(client, query="?secret=local-secret", body=BODY, **headers):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(
        f"/webhooks/local/{query}", data=body, content_type="application/json", **extra
    )


def test_the_secret_in_the_url_is_accepted(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, **{"X-Atlassian-Webhook-Identifier": "id-1"})
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert delivery.source == "local" and delivery.issue_key == "LOC-1"
    assert delivery.status == "pending"
    assert len(callbacks) == 1  # enqueued once the row is committed


def test_an_hmac_signature_with_the_secret_is_accepted(client):
    signature = "sha256=" + hmac.new(b"local-secret", BODY, hashlib.sha256).hexdigest()
    assert post(client, query="", **{"X-Hub-Signature": signature}).status_code == 202


def test_a_wrong_secret_or_signature_is_refused_and_nothing_stored(client):
    assert post(client, query="?secret=nope").status_code == 401
    assert post(client, query="").status_code == 401
    bad = "sha256=" + hmac.new(b"other", BODY, hashlib.sha256).hexdigest()
    assert post(client, query="", **{"X-Hub-Signature": bad}).status_code == 401
    assert WebhookDelivery.objects.count() == 0


def test_without_a_configured_secret_everything_is_refused(client, settings):
    settings.LOCAL_WEBHOOK_SECRET = ""
    response = post(client, query="?secret=")
    assert response.status_code == 403
    assert response.json()["error"] == "not_configured"
    assert WebhookDelivery.objects.count() == 0


def test_a_delivery_without_an_identifier_is_deduplicated_on_its_body(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        assert post(client).status_code == 202
        assert post(client).status_code == 200
    assert WebhookDelivery.objects.count() == 1
    assert len(callbacks) == 1


def test_an_unknown_event_is_stored_as_ignored_and_not_enqueued(
    client, django_capture_on_commit_callbacks
):
    body = json.dumps({"webhookEvent": "project_created"}).encode()
    with django_capture_on_commit_callbacks() as callbacks:
        assert post(client, body=body).status_code == 200
    assert WebhookDelivery.objects.get().status == "ignored"
    assert callbacks == []


def test_a_local_delivery_without_a_configured_local_jira_is_dead_with_a_clear_error(
    client, settings, make_org
):
    from organizations import services as org_services
    from webhooks.tasks import process_delivery_task

    settings.LOCAL_JIRA_URL = ""
    org = make_org(remote_base_url="https://partner.example")
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    assert post(client).status_code == 202
    delivery = WebhookDelivery.objects.get()
    process_delivery_task.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    assert "no URL is configured for the local (LOCAL_JIRA_URL) Jira site" in delivery.last_error
