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


# --- A partner's known credentials (kept by this process) and the throttle -----------------
# An accepted delivery on cached credentials reads no throttle counter: a client blocked
# (in this web process or any other) is refused by the delivery's own INSERT instead, and
# answered as a throttled client is, whatever secret it sent.

PARTNER, GUESSER = "10.0.0.7", "10.0.0.66"


def delivery_body(n: int) -> bytes:
    return json.dumps(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {
                "id": str(20000 + n),
                "key": f"REMOTE_PROJ-{n}",
                "fields": {"project": {"key": "REMOTE_PROJ"}},
            },
        }
    ).encode()


def deliver(client, org, address: str, n: int, secret: str | None = None):
    return client.post(
        f"/webhooks/incoming/{org.public_id}/?secret={secret or org.incoming_secret}",
        data=delivery_body(n),
        content_type="application/json",
        REMOTE_ADDR=address,
        HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=f"delivery-{n}",
    )


@pytest.fixture
def warm(client, two_way_org):
    """The organization after accepted deliveries from the partner's address and from the
    guesser's (a shared egress): this process holds its credentials, so the next right
    secret is accepted without reading them."""
    from organizations.models import Organization

    for n, address in enumerate((PARTNER, PARTNER, GUESSER)):
        assert deliver(client, two_way_org, address, n).status_code == 202
    return Organization.objects.get(pk=two_way_org.pk)


def fail(client, org, address: str, times: int):
    for _ in range(times):
        assert (
            post(client, f"/webhooks/incoming/{org.public_id}/?secret=guess", address).status_code
            == 401
        )


def test_a_blocked_client_gets_429_for_the_right_secret_even_with_its_credentials_kept(
    client, warm
):
    fail(client, warm, GUESSER, 5)
    stored = WebhookDelivery.objects.count()
    wrong = post(client, f"/webhooks/incoming/{warm.public_id}/?secret=guess", GUESSER)
    right = deliver(client, warm, GUESSER, 10)
    assert wrong.status_code == right.status_code == 429
    assert wrong.content == right.content
    assert 0 < int(right["Retry-After"]) <= 600
    assert WebhookDelivery.objects.count() == stored
    # The partner, from its own address, and the guesser's address for another organization:
    # accepted.
    assert deliver(client, warm, PARTNER, 11).status_code == 202
    assert WebhookDelivery.objects.count() == stored + 1


def test_a_count_at_the_limit_without_its_block_is_blocked_again_by_the_next_refusal(client, warm):
    """A web process stopped between counting the failure that reached the limit and writing
    the block: the next refused request (any secret the cache does not know) writes it."""
    from core import throttle

    target = f"incoming:{warm.public_id}"
    for _ in range(5):
        throttle.record_failure(client=GUESSER, target=target)  # the counter only
    assert (
        post(client, f"/webhooks/incoming/{warm.public_id}/?secret=guess", GUESSER).status_code
        == 429
    )
    right = deliver(client, warm, GUESSER, 10)
    assert right.status_code == 429 and right.json()["error"] == "too_many_failures"
    assert not WebhookDelivery.objects.filter(issue_id="20010").exists()
    assert deliver(client, warm, PARTNER, 11).status_code == 202


def test_a_block_ends_with_its_window(client, settings, warm):
    import time

    settings.WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS = 2
    # Start at the beginning of a window, so that the failures and the refusal share it.
    time.sleep(2 - time.time() % 2 + 0.05)
    fail(client, warm, GUESSER, 5)
    refused = deliver(client, warm, GUESSER, 10)
    assert refused.status_code == 429
    time.sleep(int(refused["Retry-After"]) + 0.1)
    assert deliver(client, warm, GUESSER, 11).status_code == 202


def test_another_organization_is_not_blocked_from_the_same_address(client, warm, make_org):
    from organizations import services

    other = make_org(name="Other", public_id="org-456", sync_direction="bidirectional")
    services.project_mapping_create(
        organization=other, local_project_key="LOC2", remote_project_key="REMOTE_PROJ"
    )
    for n in (30, 31):
        assert deliver(client, other, GUESSER, n).status_code == 202
    fail(client, warm, GUESSER, 5)
    assert deliver(client, warm, GUESSER, 32).status_code == 429
    assert deliver(client, other, GUESSER, 33).status_code == 202


def test_with_the_throttle_off_nothing_blocks(client, settings, warm):
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 0
    fail(client, warm, GUESSER, 8)
    assert deliver(client, warm, GUESSER, 10).status_code == 202


def test_behind_trusted_proxies_the_block_follows_the_forwarded_address(client, settings, warm):
    settings.NUM_PROXIES = 1
    right = f"/webhooks/incoming/{warm.public_id}/?secret={warm.incoming_secret}"

    def send(path, forwarded, n):
        return client.post(
            path,
            data=delivery_body(n),
            content_type="application/json",
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR=forwarded,
            HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=f"delivery-{n}",
        )

    assert send(right, "198.51.100.1", 20).status_code == 202
    assert send(right, "203.0.113.5", 21).status_code == 202
    for n in range(5):
        wrong = f"/webhooks/incoming/{warm.public_id}/?secret=guess"
        assert send(wrong, "spoofed, 198.51.100.1", 40 + n).status_code == 401
    assert send(right, "198.51.100.1", 22).status_code == 429
    assert send(right, "203.0.113.5", 23).status_code == 202


def test_a_known_partners_delivery_reads_no_throttle_counter_and_a_guess_does(client, warm):
    """The kept credentials spare the partner the cache read; an unknown secret still pays
    it first (then its query)."""
    from unittest import mock

    from django.core.cache import caches

    backend = type(caches["default"])
    with mock.patch.object(backend, "get", autospec=True, side_effect=backend.get) as reads:
        assert deliver(client, warm, PARTNER, 10).status_code == 202
        known = reads.call_count
        assert (
            post(client, f"/webhooks/incoming/{warm.public_id}/?secret=guess", PARTNER).status_code
            == 401
        )
    assert known == 0
    assert reads.call_count == 1
