"""Secrets are write-only for everyone; the incoming secret needs change permission; the
operator's pages need view permission on what they show (issue 11, item 1)."""

import logging

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from organizations import services
from organizations.models import Organization
from tests.conftest import grant

pytestmark = pytest.mark.django_db

TOKEN = "partner-api-token-very-secret"
HOOK = "partner-webhook-secret-very-secret"
URL = "/api/organizations/"


@pytest.fixture
def org(make_org) -> Organization:
    return make_org(
        name="Partner",
        public_id="org-sec",
        sync_direction="bidirectional",
        remote_base_url="https://partner.example",
        remote_token=TOKEN,
        remote_handshake_token=HOOK,
    )


def staff(django_user_model, username: str, *codenames: str):
    user = django_user_model.objects.create_user(
        username=username, password="pw-123456789", is_staff=True
    )
    return grant(user, *codenames)


@pytest.fixture
def viewer(django_user_model):
    return staff(
        django_user_model,
        "viewer",
        "view_organization",
        "view_projectmapping",
        "view_fieldmapping",
        "view_webhookdelivery",
        "view_syncevent",
    )


@pytest.fixture
def nobody(django_user_model):
    return staff(django_user_model, "nobody")


def change_url(org: Organization) -> str:
    return reverse("admin:organizations_organization_change", args=[org.pk])


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- the admin ------------------------------------------------------------------------------


def test_view_only_staff_see_no_secret_on_the_change_page(client, viewer, org):
    client.force_login(viewer)
    response = client.get(change_url(org))
    assert response.status_code == 200
    page = response.content.decode()
    for secret in (TOKEN, HOOK, org.incoming_secret):
        assert secret not in page
    assert "Set" in page  # "set / not set", and when


def test_staff_who_may_change_see_no_partner_secret_but_the_incoming_url(client, superuser, org):
    client.force_login(superuser)
    page = client.get(change_url(org)).content.decode()
    assert TOKEN not in page and HOOK not in page
    assert f"?secret={org.incoming_secret}" in page
    assert 'id="remote-token-state"' in page and 'id="remote-handshake-token-state"' in page


def test_the_page_says_when_a_partner_secret_was_set(client, superuser, make_org):
    unset = make_org(name="Unset", public_id="org-unset")
    client.force_login(superuser)
    page = client.get(change_url(unset)).content.decode()
    assert "Not set" in page
    org = Organization.objects.get(pk=unset.pk)
    assert org.remote_token_set_at is None and org.remote_handshake_token_set_at is None
    org = services.organization_update(organization=org, data={"remote_token": TOKEN})
    assert org.remote_token_set_at is not None
    assert org.remote_handshake_token_set_at is None
    page = client.get(change_url(org)).content.decode()
    assert TOKEN not in page
    assert "Set on" in page


def test_staff_without_permissions_get_no_page(client, nobody, org):
    client.force_login(nobody)
    assert client.get(change_url(org)).status_code == 403


def test_view_only_staff_cannot_rotate_in_the_admin(client, viewer, org):
    client.force_login(viewer)
    response = client.post(reverse("admin:organizations_organization_rotate_secret", args=[org.pk]))
    assert response.status_code == 403
    assert Organization.objects.get(pk=org.pk).incoming_secret == org.incoming_secret


# --- the API --------------------------------------------------------------------------------


def test_the_api_never_returns_the_partner_secrets(api, org):
    body = api.get(f"{URL}{org.public_id}/").json()
    text = str(body)
    assert TOKEN not in text and HOOK not in text
    assert body["remoteHandshakeToken"] is None and "remoteToken" not in body
    assert body["hasRemoteToken"] is True and body["hasRemoteHandshakeToken"] is True
    assert body["remoteTokenSetAt"] and body["remoteHandshakeTokenSetAt"]
    # A write answers without the secret too.
    response = api.patch(f"{URL}{org.public_id}/", {"remoteToken": "new-token-xyz"}, format="json")
    assert response.status_code == 200
    assert "new-token-xyz" not in response.content.decode()


def test_view_only_staff_get_no_incoming_secret_from_the_api(viewer, org):
    client = api_as(viewer)
    response = client.get(f"{URL}{org.public_id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["incomingSecret"] is None
    for secret in (TOKEN, HOOK, org.incoming_secret):
        assert secret not in response.content.decode()


def test_staff_who_may_change_get_the_incoming_secret(django_user_model, org):
    editor = staff(django_user_model, "editor", "view_organization", "change_organization")
    body = api_as(editor).get(f"{URL}{org.public_id}/").json()
    assert body["incomingSecret"] == org.incoming_secret


def test_rotating_through_the_api_needs_change_permission(django_user_model, org):
    adder = staff(django_user_model, "adder", "view_organization", "add_organization")
    response = api_as(adder).post(f"{URL}{org.public_id}/rotate-secret/")
    assert response.status_code == 403
    assert Organization.objects.get(pk=org.pk).incoming_secret == org.incoming_secret
    editor = staff(django_user_model, "editor", "view_organization", "change_organization")
    response = api_as(editor).post(f"{URL}{org.public_id}/rotate-secret/")
    assert response.status_code == 200
    assert response.json()["incomingSecret"] != org.incoming_secret


def test_no_secret_in_log_lines_or_error_answers(api, caplog):
    caplog.set_level(logging.DEBUG)
    created = api.post(
        URL,
        {
            "name": "Logged",
            "syncDirection": "bidirectional",
            "remoteToken": TOKEN,
            "remoteHandshakeToken": HOOK,
        },
        format="json",
    )
    assert created.status_code == 201
    org_id = created.json()["id"]
    bad = api.patch(
        f"{URL}{org_id}/",
        {"remoteToken": TOKEN + "2", "remoteHandshakeToken": HOOK + "2", "conflictPolicy": "x"},
        format="json",
    )
    assert bad.status_code == 400
    api.post(f"{URL}{org_id}/rotate-secret/")
    incoming = Organization.objects.get(public_id=org_id).incoming_secret
    for secret in (TOKEN, HOOK, incoming):
        assert secret not in caplog.text
        assert secret not in bad.content.decode()


# --- the dashboard, /api/status/ and the schema need view permission ------------------------


def test_staff_without_permissions_get_no_dashboard_status_or_schema(client, nobody, org):
    client.force_login(nobody)
    assert client.get("/admin/dashboard/").status_code == 403
    client_api = api_as(nobody)
    assert client_api.get("/api/status/").status_code == 403
    assert client_api.get("/api/schema/").status_code == 403


def test_view_only_staff_get_the_dashboard_status_and_schema(client, viewer, org):
    client.force_login(viewer)
    page = client.get("/admin/dashboard/")
    assert page.status_code == 200
    for secret in (TOKEN, HOOK, org.incoming_secret):
        assert secret not in page.content.decode()
    client_api = api_as(viewer)
    status = client_api.get("/api/status/")
    assert status.status_code == 200
    assert org.incoming_secret not in status.content.decode()
    assert client_api.get("/api/schema/").status_code == 200
