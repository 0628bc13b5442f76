"""`/metrics` (ops/metrics.py): who may read it, and that its figures are the dashboard's.

The traffic is real: two simulated Jira sites over HTTP, their webhooks stored as deliveries
and run through the worker's task (tests/integration/test_loop_prevention.py's World).
"""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from jiraapi.events import JiraEvent
from sync.models import IssueLink
from webhooks.models import DeliverySource, DeliveryStatus, WebhookDelivery
from webhooks.services import delivery_store
from webhooks.tasks import claim

from .test_loop_prevention import World

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def figure(text: str, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        s.value
        for s in samples(text)
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def scraper(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_CACHE_SECONDS = 0  # each scrape reads the database again

    def scrape() -> str:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.content.decode()

    return scrape


def test_anyone_else_gets_401_or_403_and_never_the_figures(client, django_user_model, settings):
    settings.METRICS_TOKEN = ""
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    # No token configured: no bearer token is good, not even an empty one.
    for header in ("Bearer ", "Bearer x", "bearer  "):
        refused = client.get("/metrics", HTTP_AUTHORIZATION=header)
        assert refused.status_code == 401
        assert b"jirasync_" not in refused.content
    settings.METRICS_TOKEN = TOKEN
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Token {TOKEN}", TOKEN):
        refused = client.get("/metrics", HTTP_AUTHORIZATION=header)
        assert refused.status_code == 401, header
        assert b"jirasync_" not in refused.content
    user = django_user_model.objects.create_user(username="u", password="pw-123456789")
    client.force_login(user)
    assert client.get("/metrics").status_code == 403
    user.is_staff = True  # staff, but without the dashboard's view permissions
    user.save()
    assert client.get("/metrics").status_code == 403
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_staff_or_the_token_get_the_figures(client, superuser, settings):
    settings.METRICS_TOKEN = TOKEN
    by_token = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert by_token.status_code == 200
    assert b"# TYPE jirasync_queue_depth gauge" in by_token.content
    client.force_login(superuser)
    assert b"jirasync_deliveries" in client.get("/metrics").content


@pytest.fixture
def traffic(settings):
    """Deliveries of every status, a conflict, echoes and a rate-limited call, made by the
    sync between two simulated sites."""
    world = World(settings)
    try:
        world.link_pair()  # done (local), echo (partner)
        partner = world.sims["partner"]
        # A simultaneous edit on both sides: a conflict, resolved by the later one.
        sides = ("local", "partner")
        for side in sides:
            world.edit(side, summary=f"{side} says")
        edits = {side: world.take(side) for side in sides}
        for side in sides:
            assert [world.feed(side, hook) for hook in edits[side]] == ["done"]
        for side in sides:
            world.feed_all(side)
        # The partner answers 429 once: the delivery is retried and done.
        faults = f"{partner.base_url}/_sim/faults"
        requests.post(faults, json={"rate_limit_count": 1, "retry_after": 0}, timeout=5)
        world.edit("local", summary="after a 429")
        assert world.feed_all("local") == ["done"]
        world.feed_all("partner")
        # An event of a project that is not mapped: ignored.
        world.edit("local", summary="ignored")
        (hook,) = world.take("local")
        body = json.loads(hook["raw"])
        body["issue"]["fields"]["project"]["key"] = "NOPE"
        body["issue"]["key"] = "NOPE-1"
        assert world.feed("local", hook, body=json.dumps(body).encode()) == "ignored"
        # The partner refuses for good (403): dead.
        requests.post(faults, json={"error_count": 1, "error_statuses": [403]}, timeout=5)
        world.edit("local", summary="refused")
        assert world.feed_all("local") == ["dead"]
        # The partner rejects our credentials (401): failed, waiting for new ones.
        requests.post(faults, json={"error_count": 1, "error_statuses": [401]}, timeout=5)
        world.edit("local", summary="rejected")
        assert world.feed_all("local") == ["failed"]
        requests.post(faults, json={"error_count": 0}, timeout=5)
        # Two still queued: one waiting for a worker, one a worker has taken.
        world.edit("partner", summary="queued")
        world.edit("partner", summary="queued again")
        stored = []
        for hook in world.take("partner"):
            delivery, _ = delivery_store(
                source=DeliverySource.PARTNER,
                organization=world.org,
                body=hook["raw"],
                event=JiraEvent.from_body(hook["raw"]),
                headers=hook["headers"],
            )
            stored.append(delivery)
        claim(stored[0].pk)  # processing
        yield world
    finally:
        world.close()


def test_metrics_and_the_dashboard_agree_on_real_traffic(client, superuser, scraper, traffic):
    world = traffic
    statuses = set(WebhookDelivery.objects.values_list("status", flat=True))
    assert statuses == set(DeliveryStatus.values), statuses
    client.force_login(superuser)
    status = client.get("/api/status/").json()
    text = scraper()

    for name, n in status["deliveries"].items():
        assert figure(text, "jirasync_deliveries", status=name) == n, name
    assert figure(text, "jirasync_deliveries", source="partner", status="echo") >= 1
    for result, n in status["results"].items():
        assert figure(text, "jirasync_sync_events", result=result) == n, result
    assert status["results"]["conflict"] >= 1
    assert figure(text, "jirasync_sync_events", organization=world.org.public_id) == sum(
        status["results"].values()
    )
    queued = figure(text, "jirasync_queue_depth", status="pending") + figure(
        text, "jirasync_queue_depth", status="processing"
    )
    assert queued == status["backlog"] == 2
    assert figure(text, "jirasync_queue_depth", organization=world.org.public_id) == 2
    assert figure(text, "jirasync_queue_depth", organization="", status="failed") == 1
    for direction, found in status["latency"].items():
        assert (
            figure(text, "jirasync_sync_latency_seconds_gcount", direction=direction)
            == (found["count"])
        )
        assert (
            figure(text, "jirasync_sync_latency_seconds_bucket", direction=direction, le="+Inf")
            == (found["count"])
        )
    assert set(status["latency"]) == {"push", "pull"}
    # The organization's own page of the dashboard shows the same per-organization figures.
    mine = client.get(f"/api/status/?org={world.org.public_id}").json()
    assert mine["results"] == {
        s.labels["result"]: s.value
        for s in samples(text)
        if s.name == "jirasync_sync_events" and s.labels["organization"] == world.org.public_id
    }


def test_jira_calls_and_429s_are_counted_per_site(scraper, settings):
    world = World(settings)
    try:
        world.link_pair()
        partner = world.sims["partner"].base_url
        before = scraper()
        requests.post(f"{partner}/_sim/faults", json={"rate_limit_count": 1}, timeout=5)
        world.edit("local", summary="W")
        assert world.feed_all("local") == ["done"]
        after = scraper()
        calls = figure(after, "jirasync_jira_calls_total", site=partner) - figure(
            before, "jirasync_jira_calls_total", site=partner
        )
        assert calls == world.calls("partner") > 0  # the simulator's own call log agrees
        limited = figure(after, "jirasync_jira_rate_limited_total", site=partner) - figure(
            before, "jirasync_jira_rate_limited_total", site=partner
        )
        assert limited == 1
        assert IssueLink.objects.count() == 1
    finally:
        world.close()
