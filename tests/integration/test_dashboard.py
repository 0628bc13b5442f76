import pytest
from rest_framework.test import APIClient

from sync.models import SyncEvent
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

DEAD_ERROR = "PUT /rest/api/3/issue/REMOTE_PROJ-3 -> 400 — priority: Specify a valid priority."


@pytest.fixture
def activity(two_way_org, make_org):
    other = make_org(name="Quiet partner")
    for n, status in enumerate(["done", "done", "echo", "dead", "failed", "pending"]):
        WebhookDelivery.objects.create(
            source="partner",
            organization=two_way_org,
            dedupe_key=f"k{n}",
            body="{}",
            event_type="jira:issue_updated",
            issue_key=f"REMOTE_PROJ-{n}",
            status=status,
            last_error=DEAD_ERROR if status == "dead" else "",
        )
    SyncEvent.objects.create(
        organization=two_way_org,
        direction="pull",
        action="update",
        fields=["summary"],
        result="written",
        latency_ms=42,
    )
    SyncEvent.objects.create(
        organization=two_way_org,
        direction="push",
        action="update",
        result="conflict",
        message="summary: remote side's value kept",
    )
    return two_way_org, other


def test_the_dashboard_shows_health_chart_problems_conflicts_and_events(
    client, superuser, activity
):
    org, other = activity
    client.force_login(superuser)
    page = client.get("/admin/dashboard/").content.decode()
    assert "2 deliveries need attention" in page
    assert 'id="backlog">1<' in page
    assert 'id="echoes">1<' in page
    assert "<rect" in page  # the chart
    assert "Specify a valid priority." in page  # Jira's own message
    assert "summary: remote side&#x27;s value kept" in page
    assert "42 ms" in page
    assert "Quiet partner" in page and 'data-status="pending"' in page
    only = client.get(f"/admin/dashboard/?org={org.public_id}").content.decode()
    assert "Quiet partner" not in only


def test_retry_from_the_dashboard(client, superuser, activity, django_capture_on_commit_callbacks):
    client.force_login(superuser)
    dead = WebhookDelivery.objects.get(status="dead")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/admin/dashboard/retry/{dead.pk}/", {"next": "/admin/dashboard/"})
    assert response.status_code == 302
    dead.refresh_from_db()
    assert dead.status == "pending" and dead.attempts == 0
    assert len(callbacks) == 1


def test_the_dashboard_is_staff_only(client, django_user_model):
    assert client.get("/admin/dashboard/").status_code == 302  # to the login page
    user = django_user_model.objects.create_user(username="u", password="pw-123456789")
    client.force_login(user)
    assert client.get("/admin/dashboard/").status_code == 302


def test_status_json_for_monitoring(api, activity):
    org, _ = activity
    body = api.get("/api/status/").json()
    assert body["healthy"] is False
    assert body["backlog"] == 1
    assert body["deliveries"]["dead"] == 1 and body["deliveries"]["echo"] == 1
    assert body["results"] == {"written": 1, "conflict": 1}
    assert {p["status"] for p in body["problems"]} == {"dead", "failed"}
    ids = {o["id"]: o for o in body["organizations"]}
    assert ids[org.public_id]["handshakeStatus"] == "pending"
    assert ids[org.public_id]["problems"] == 2
    assert APIClient().get("/api/status/").status_code == 401


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "http://testserver.evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_retry_never_redirects_to_another_site(client, superuser, activity, next_url):
    client.force_login(superuser)
    dead = WebhookDelivery.objects.get(status="dead")
    response = client.post(f"/admin/dashboard/retry/{dead.pk}/", {"next": next_url})
    assert response.status_code == 302
    assert response["Location"] == "/admin/dashboard/"


def test_retry_returns_to_a_same_site_page(client, superuser, activity):
    client.force_login(superuser)
    dead = WebhookDelivery.objects.get(status="dead")
    response = client.post(
        f"/admin/dashboard/retry/{dead.pk}/", {"next": "/admin/dashboard/?org=org-123"}
    )
    assert response["Location"] == "/admin/dashboard/?org=org-123"


def test_per_organization_counts_do_not_multiply_across_tables(api, activity):
    """Deliveries and sync events are counted each on its own (a join of both per
    organization grows as their product: minutes on a large install)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org, other = activity
    for _ in range(3):
        SyncEvent.objects.create(
            organization=org, direction="pull", action="update", result="conflict"
        )
    SyncEvent.objects.create(organization=org, direction="pull", action="update", result="error")
    with CaptureQueriesContext(connection) as queries:
        body = api.get("/api/status/").json()
    ids = {o["id"]: o for o in body["organizations"]}
    assert ids[org.public_id]["problems"] == 2
    expected = WebhookDelivery.objects.filter(organization=org).count()
    assert ids[org.public_id]["deliveries"] == expected
    assert (
        ids[org.public_id]["conflicts"]
        == SyncEvent.objects.filter(organization=org, result="conflict").count()
    )
    assert ids[other.public_id]["deliveries"] == 0
    joined = [
        q["sql"]
        for q in queries.captured_queries
        if 'JOIN "webhooks_webhookdelivery"' in q["sql"] and 'JOIN "sync_syncevent"' in q["sql"]
    ]
    assert joined == []
