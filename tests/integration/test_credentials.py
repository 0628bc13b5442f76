"""Expiring and rejected partner credentials: the expiry warning, a 401 from a site shown as
"credentials rejected" with its deliveries waiting, and a new token that retries them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from organizations import services as org_services
from organizations.models import Organization
from webhooks.models import DeliveryStatus, WebhookDelivery

from .test_loop_prevention import SYNC

pytestmark = pytest.mark.django_db

URL = "/api/organizations/"


@pytest.fixture
def celery_eager(settings):
    """Tasks sent run in this process (the worker's code, no broker), as in test_drift."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


def _credentials(api, public_id: str) -> dict:
    body = api.get("/api/status/").json()
    return next(o for o in body["organizations"] if o["id"] == public_id)["credentials"]


def test_a_token_expiring_within_the_warning_days_is_warned(
    api, client, superuser, make_org, settings
):
    today = timezone.localdate()
    days = settings.CREDENTIALS_EXPIRY_WARNING_DAYS
    make_org(name="Soon", public_id="org-soon", remote_token_expires_at=today + timedelta(days))
    make_org(
        name="Later", public_id="org-later", remote_token_expires_at=today + timedelta(days + 1)
    )
    make_org(name="Past", public_id="org-past", remote_token_expires_at=today - timedelta(1))
    make_org(name="Unknown", public_id="org-unknown")

    assert _credentials(api, "org-soon")["state"] == "expiring"
    assert _credentials(api, "org-soon")["daysLeft"] == days
    assert _credentials(api, "org-soon")["tokenExpiresAt"] == (today + timedelta(days)).isoformat()
    assert _credentials(api, "org-later")["state"] == "ok"
    assert _credentials(api, "org-past")["state"] == "expired"
    assert _credentials(api, "org-unknown")["state"] == "ok"

    client.force_login(superuser)
    page = client.get("/admin/dashboard/").content.decode()
    assert page.count('data-state="expiring"') == 1
    assert page.count('data-state="expired"') == 1


def test_the_expiry_date_is_set_through_the_api_alone_or_with_the_token(api, make_org):
    make_org(name="Acme", public_id="org-exp")
    day = (timezone.localdate() + timedelta(200)).isoformat()
    body = api.patch(f"{URL}org-exp/", {"remoteTokenExpiresAt": day}, format="json").json()
    assert body["remoteTokenExpiresAt"] == day
    later = (timezone.localdate() + timedelta(300)).isoformat()
    body = api.patch(
        f"{URL}org-exp/", {"remoteToken": "new", "remoteTokenExpiresAt": later}, format="json"
    ).json()
    assert body["remoteTokenExpiresAt"] == later
    assert Organization.objects.get(public_id="org-exp").remote_token == "new"
    bad = api.patch(f"{URL}org-exp/", {"remoteTokenExpiresAt": "soon"}, format="json")
    assert bad.status_code == 400


def test_a_401_shows_credentials_rejected_and_a_new_token_retries_the_waiting_deliveries(
    world, api, django_capture_on_commit_callbacks, celery_eager
):
    org_services.organization_update(organization=world.org, data={"remote_token": "revoked"})
    world.org.refresh_from_db()
    world.edit("local", summary="first while rejected")
    world.edit("local", summary="second while rejected")

    statuses = world.feed_all("local")

    assert statuses == [DeliveryStatus.FAILED] * len(statuses) and statuses
    waiting = list(WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED))
    assert len(waiting) == len(statuses)
    assert all(d.last_error.startswith("credentials rejected") for d in waiting)
    world.org.refresh_from_db()
    assert world.org.credentials_rejected_at is not None
    assert "401" in world.org.credentials_rejected_message
    shown = _credentials(api, world.org.public_id)
    assert shown["state"] == "rejected"
    assert shown["rejectedAt"]
    assert world.fields("partner")["summary"] != "second while rejected"

    with django_capture_on_commit_callbacks(execute=True):
        org_services.organization_update(
            organization=world.org, data={"remote_token": SYNC["partner"][1]}
        )

    world.org.refresh_from_db()
    assert world.org.credentials_rejected_at is None
    assert world.org.credentials_rejected_message == ""
    assert _credentials(api, world.org.public_id)["state"] == "ok"
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).exists()
    assert world.fields("partner")["summary"] == "second while rejected"


def test_a_401_from_our_own_jira_is_not_blamed_on_the_partner(world, settings):
    world.edit("partner", summary="from the partner")
    settings.LOCAL_JIRA_TOKEN = "revoked-local"

    statuses = world.feed_all("partner")

    assert statuses and set(statuses) == {DeliveryStatus.FAILED}
    delivery = WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).first()
    assert delivery.last_error.startswith("credentials rejected by our Jira")
    world.org.refresh_from_db()
    assert world.org.credentials_rejected_at is None


def test_the_organization_page_shows_credentials_rejected(client, superuser, make_org):
    org = make_org(name="Acme", remote_base_url="https://acme.example", remote_user="sync")
    message = "credentials rejected by the partner's Jira: GET /rest/api/3/myself -> 401"
    marked = org_services.organization_credentials_reject(
        base_url="https://acme.example", user="sync", message=message
    )
    assert marked == 1
    client.force_login(superuser)
    page = client.get(f"/admin/organizations/organization/{org.pk}/change/").content.decode()
    assert "credentials rejected" in page
    assert "-&gt; 401" in page
