"""A web process keeps the credentials of the partner deliveries it accepted: the next ones
make no query but their INSERT. Every change of the organization still applies to the very
next delivery, exactly as with nothing kept, and a delivery stored on stale credentials is
never announced or sent (each test first warms the cache with accepted deliveries)."""

import hashlib
import hmac
import json
import re
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from organizations import services
from organizations.models import Organization
from webhooks.models import WebhookDelivery
from webhooks.pending_relay import relay_conninfo
from webhooks.services import HELD_REASON

pytestmark = pytest.mark.django_db


def body(n: int, project: str = "REMOTE_PROJ") -> bytes:
    return json.dumps(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "id": str(10000 + n),
                "key": f"{project}-{n}",
                "fields": {"project": {"key": project}},
            },
        }
    ).encode()


def post(client, org_id: str, secret: str, n: int, project: str = "REMOTE_PROJ", **headers):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(
        f"/webhooks/incoming/{org_id}/?secret={secret}",
        data=body(n, project),
        content_type="application/json",
        HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=f"delivery-{n}",
        **extra,
    )


def credentials_read(queries) -> bool:
    """Whether the organization's credentials were read (its lookup by public id)."""
    return any(re.search(r"\bpublic_id\b", q["sql"]) for q in queries.captured_queries)


@pytest.fixture
def warm(client, two_way_org) -> Organization:
    """The organization, after three accepted deliveries of this process (the last one on
    the cached credentials; the first one completed the handshake, which moved them)."""
    org = two_way_org
    assert post(client, org.public_id, org.incoming_secret, 0).status_code == 202
    assert post(client, org.public_id, org.incoming_secret, 1).status_code == 202
    with CaptureQueriesContext(connection) as queries:
        assert post(client, org.public_id, org.incoming_secret, 2).status_code == 202
    assert not credentials_read(queries)
    return Organization.objects.get(pk=org.pk)


def no_held_rows():
    assert not WebhookDelivery.objects.filter(last_error=HELD_REASON).exists()


def test_a_cached_delivery_makes_one_query_and_is_stored_and_queued(
    client, warm, django_capture_on_commit_callbacks
):
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks() as callbacks,
    ):
        response = post(client, warm.public_id, warm.incoming_secret, 3)
    assert response.status_code == 202
    # No read at all: the INSERT (the test's savepoint around it, and the once-a-second note
    # of the delivery's arrival, aside).
    kinds = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [k for k in kinds if k not in ("SAVEPOINT", "RELEASE", "UPDATE")] == ["INSERT"]
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == "pending" and delivery.organization_id == warm.pk
    assert len(callbacks) == 1


def test_a_wrong_secret_for_a_cached_organization_does_the_full_work(client, warm):
    from .test_webhook_timing import work

    wrong = work(client, f"/webhooks/incoming/{warm.public_id}/?secret=x" + "y" * 42)
    unknown = work(client, "/webhooks/incoming/org-nope/?secret=x" + "y" * 42)
    assert wrong[0].status_code == unknown[0].status_code == 401
    assert wrong[0].content == unknown[0].content
    assert wrong[1] == unknown[1] and wrong[1]["decrypt"] >= 2
    assert wrong[2] == unknown[2] and wrong[2]


def test_a_rotated_secret_applies_at_once(client, warm):
    old = warm.incoming_secret
    org = services.organization_rotate_secret(organization=warm)
    # The product's promise: the new secret works, the old one during its grace period only.
    assert post(client, org.public_id, org.incoming_secret, 3).status_code == 202
    assert post(client, org.public_id, old, 4).status_code == 202
    Organization.objects.filter(pk=org.pk).update(
        previous_secret_valid_until=timezone.now() - timedelta(seconds=1)
    )
    refused = post(client, org.public_id, old, 5)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert not WebhookDelivery.objects.filter(issue_id="10005").exists()
    no_held_rows()


def test_a_secret_rotated_without_grace_refuses_the_old_one_at_once(client, warm):
    old = warm.incoming_secret
    org = services.organization_rotate_secret(organization=warm, grace_period=timedelta(0))
    refused = post(client, org.public_id, old, 3)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert post(client, org.public_id, org.incoming_secret, 4).status_code == 202
    assert WebhookDelivery.objects.count() == 4
    no_held_rows()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"enabled": False}, "organization_disabled"),
        ({"sync_direction": "push"}, "two_way_off"),
    ],
)
def test_a_disabled_organization_or_two_way_off_refuses_at_once(client, warm, change, code):
    services.organization_update(organization=warm, data=change)
    refused = post(client, warm.public_id, warm.incoming_secret, 3)
    assert refused.status_code == 403 and refused.json()["error"] == code
    assert WebhookDelivery.objects.count() == 3
    no_held_rows()


def test_a_deleted_organization_gets_the_unknown_answer(client, warm):
    services.organization_delete(organization=warm)
    refused = post(client, warm.public_id, warm.incoming_secret, 3)
    unknown = post(client, "org-nope", "x", 4)
    assert refused.status_code == unknown.status_code == 401
    assert refused.content == unknown.content
    assert WebhookDelivery.objects.count() == 0


def test_a_removed_project_mapping_makes_the_next_delivery_ignored(
    client, warm, django_capture_on_commit_callbacks
):
    services.project_mapping_delete(mapping=warm.project_mappings.get())
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, warm.public_id, warm.incoming_secret, 3)
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == "ignored" and "not mapped" in delivery.last_error
    assert callbacks == []
    no_held_rows()


def test_a_new_signature_secret_applies_at_once(client, warm):
    org = services.organization_update(
        organization=warm, data={"remote_handshake_token": "hook-secret", "require_signature": True}
    )
    missing = post(client, org.public_id, org.incoming_secret, 3)
    assert missing.status_code == 401 and missing.json()["error"] == "signature_missing"
    good = "sha256=" + hmac.new(b"hook-secret", body(4), hashlib.sha256).hexdigest()
    assert (
        post(client, org.public_id, org.incoming_secret, 4, **{"X-Hub-Signature": good}).status_code
        == 202
    )
    # Cached again, with the signature secret: then it changes.
    org = services.organization_update(organization=org, data={"remote_handshake_token": "other"})
    stale = "sha256=" + hmac.new(b"hook-secret", body(5), hashlib.sha256).hexdigest()
    invalid = post(client, org.public_id, org.incoming_secret, 5, **{"X-Hub-Signature": stale})
    assert invalid.status_code == 401 and invalid.json()["error"] == "signature_invalid"
    fresh = "sha256=" + hmac.new(b"other", body(6), hashlib.sha256).hexdigest()
    assert (
        post(
            client, org.public_id, org.incoming_secret, 6, **{"X-Hub-Signature": fresh}
        ).status_code
        == 202
    )
    assert sorted(WebhookDelivery.objects.values_list("issue_id", flat=True)) == [
        "10000",
        "10001",
        "10002",
        "10004",
        "10006",
    ]
    no_held_rows()


def test_a_repeat_is_answered_as_a_repeat_and_refused_on_a_revoked_secret(client, warm):
    again = post(client, warm.public_id, warm.incoming_secret, 2)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    old = warm.incoming_secret
    services.organization_rotate_secret(organization=warm, grace_period=timedelta(0))
    refused = post(client, warm.public_id, old, 2)
    assert refused.status_code == 401
    assert WebhookDelivery.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_delivery_stored_on_stale_credentials_is_never_announced(client, two_way_org):
    """Committed for real, with a listener on the pending trigger's channel: only the rows
    stored as pending are announced, and none is the held one."""
    org = two_way_org
    listener = psycopg.connect(**relay_conninfo(connection.settings_dict), autocommit=True)
    try:
        listener.execute("LISTEN webhook_delivery_pending")
        assert post(client, org.public_id, org.incoming_secret, 1).status_code == 202
        assert post(client, org.public_id, org.incoming_secret, 2).status_code == 202
        services.organization_update(organization=org, data={"enabled": False})
        assert post(client, org.public_id, org.incoming_secret, 3).status_code == 403
        services.organization_update(organization=org, data={"enabled": True})
        assert post(client, org.public_id, org.incoming_secret, 4).status_code == 202
        announced = [n.payload.split(":")[0] for n in listener.notifies(timeout=1, stop_after=3)]
    finally:
        listener.close()
    pending = WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True)
    assert sorted(announced) == sorted(str(pk) for pk in pending)
    assert sorted(WebhookDelivery.objects.values_list("issue_id", flat=True)) == [
        "10001",
        "10002",
        "10004",
    ]


def test_a_rotated_out_secret_is_never_cached(client, warm):
    """Its validity ends by time, which no version tells: every delivery with it is checked
    by the query (until its grace ends, as `test_a_rotated_secret_applies_at_once` shows)."""
    old = warm.incoming_secret
    org = services.organization_rotate_secret(organization=warm)
    for n in (3, 4, 5):
        with CaptureQueriesContext(connection) as queries:
            assert post(client, org.public_id, old, n).status_code == 202
        assert credentials_read(queries)
