"""Repeated failed authentications on the webhook endpoints are throttled per client address
and target; nobody else is."""

import json

import pytest

from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

BODY = json.dumps(
    {
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "id": "10001",
            "key": "REMOTE_PROJ-1",
            "fields": {"project": {"key": "REMOTE_PROJ"}},
        },
    }
).encode()


@pytest.fixture(autouse=True)
def limits(settings):
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 5
    settings.WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS = 600
    settings.LOCAL_WEBHOOK_SECRET = "local-secret"


def post(client, path, address, body=BODY):
    return client.post(path, data=body, content_type="application/json", REMOTE_ADDR=address)


def test_repeated_failures_get_429_with_retry_after_and_nothing_is_stored(
    client, two_way_org, make_org
):
    org = two_way_org
    wrong = f"/webhooks/incoming/{org.public_id}/?secret=guess"
    for _ in range(5):
        assert post(client, wrong, "10.0.0.66").status_code == 401
    throttled = post(client, wrong, "10.0.0.66")
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "too_many_failures"
    assert 0 < int(throttled["Retry-After"]) <= 600
    # Even a right guess is not tried from that address for that organization now.
    right = f"/webhooks/incoming/{org.public_id}/?secret={org.incoming_secret}"
    assert post(client, right, "10.0.0.66").status_code == 429
    assert WebhookDelivery.objects.count() == 0
    # The partner itself, from its own address, is not throttled.
    assert post(client, right, "10.0.0.7").status_code == 202


def test_failures_against_another_organization_never_throttle_a_partner(client, two_way_org):
    right = f"/webhooks/incoming/{two_way_org.public_id}/?secret={two_way_org.incoming_secret}"
    for target in ("org-nope", "org-other"):
        for _ in range(8):
            post(client, f"/webhooks/incoming/{target}/?secret=guess", "10.0.0.66")
    for _ in range(8):
        post(client, "/webhooks/local/?secret=guess", "10.0.0.66")
    # Same address (a shared egress), another organization: accepted.
    assert post(client, right, "10.0.0.66").status_code == 202


def test_the_local_endpoint_is_throttled_too(client):
    for _ in range(5):
        assert post(client, "/webhooks/local/?secret=guess", "10.0.0.66").status_code == 401
    assert post(client, "/webhooks/local/?secret=local-secret", "10.0.0.66").status_code == 429
    assert post(client, "/webhooks/local/?secret=local-secret", "10.0.0.8").status_code == 202


def test_behind_trusted_proxies_the_forwarded_address_counts(client, settings, two_way_org):
    settings.NUM_PROXIES = 1
    wrong = f"/webhooks/incoming/{two_way_org.public_id}/?secret=guess"
    right = f"/webhooks/incoming/{two_way_org.public_id}/?secret={two_way_org.incoming_secret}"
    for _ in range(6):
        client.post(
            wrong,
            data=BODY,
            content_type="application/json",
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
        )
    response = client.post(
        right,
        data=BODY,
        content_type="application/json",
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.5",
    )
    assert response.status_code == 202


def test_a_failure_count_is_kept_for_its_window_only(client, two_way_org):
    from django.core.cache import cache

    from core import throttle

    wrong = f"/webhooks/incoming/{two_way_org.public_id}/?secret=guess"
    for _ in range(3):
        assert post(client, wrong, "10.0.0.99").status_code == 401
    key = throttle._key(client="10.0.0.99", target=f"incoming:{two_way_org.public_id}", window=600)
    assert cache.get(key) == 3
    if hasattr(cache, "add_and_incr"):  # Redis: counted in one round trip, and it expires
        stored = cache.make_and_validate_key(key)
        assert 0 < cache._cache.get_client(stored).ttl(stored) <= 601
