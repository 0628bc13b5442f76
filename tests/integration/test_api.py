import base64

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from organizations.models import Organization
from tests.conftest import grant

pytestmark = pytest.mark.django_db

URL = "/api/organizations/"


def test_create_and_read_with_the_seed_field_names(api, settings):
    settings.PUBLIC_BASE_URL = "https://sync.example.com"
    response = api.post(
        URL,
        {
            "id": "org-123",
            "name": "Partner Co",
            "syncDirection": "bidirectional",
            "remoteBaseUrl": "https://partner.atlassian.net",
            "remoteUser": "bot@partner.example",
            "remoteToken": "api-token-1",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] == "org-123"
    assert body["syncDirection"] == "bidirectional"
    assert body["handshakeStatus"] == "pending"
    assert len(body["incomingSecret"]) >= 43
    assert body["incomingWebhookUrl"] == "https://sync.example.com/webhooks/incoming/org-123/"
    assert "remoteHandshakeToken" in body
    assert body["hasRemoteToken"] is True
    assert "api-token-1" not in response.content.decode()

    detail = api.get(f"{URL}org-123/").json()
    assert detail["incomingSecret"] == body["incomingSecret"]


def test_the_list_never_shows_secrets(api, make_org):
    org = make_org(remote_handshake_token="hook-secret", remote_token="tok")
    response = api.get(URL)
    assert response.status_code == 200
    text = response.content.decode()
    assert org.incoming_secret not in text
    assert "hook-secret" not in text
    assert 'tok"' not in text
    item = response.json()[0]
    assert item["incomingSecret"] is None
    assert item["remoteHandshakeToken"] is None
    assert item["hasRemoteHandshakeToken"] is True


def test_patch_switches_direction_and_handshake(api, make_org):
    org = make_org(public_id="org-7")
    body = api.patch(f"{URL}org-7/", {"syncDirection": "bidirectional"}, format="json").json()
    assert body["handshakeStatus"] == "pending"
    body = api.patch(f"{URL}org-7/", {"syncDirection": "push"}, format="json").json()
    assert body["handshakeStatus"] == "none"
    org.refresh_from_db()
    assert org.sync_direction == "push"


def test_worklog_sync_is_off_by_default_and_switched_by_patch(api, make_org):
    org = make_org(public_id="org-w")
    assert api.get(f"{URL}org-w/").json()["syncWorklogs"] is False
    body = api.patch(f"{URL}org-w/", {"syncWorklogs": True}, format="json").json()
    assert body["syncWorklogs"] is True
    org.refresh_from_db()
    assert org.sync_worklogs is True


def test_patch_stores_the_partner_webhook_secret(api, make_org):
    make_org(public_id="org-8")
    response = api.patch(f"{URL}org-8/", {"remoteHandshakeToken": "hook-secret"}, format="json")
    assert response.status_code == 200
    # Write-only: stored, never answered back.
    assert response.json()["remoteHandshakeToken"] is None
    assert response.json()["hasRemoteHandshakeToken"] is True
    assert "hook-secret" not in response.content.decode()
    assert Organization.objects.get(public_id="org-8").remote_handshake_token == "hook-secret"


def test_rotate_secret_endpoint(api, make_org):
    org = make_org(public_id="org-9")
    body = api.post(f"{URL}org-9/rotate-secret/").json()
    assert body["incomingSecret"] != org.incoming_secret
    assert body["previousSecretValidUntil"] is not None


def test_delete(api, make_org):
    make_org(public_id="org-10")
    assert api.delete(f"{URL}org-10/").status_code == 204
    assert api.get(f"{URL}org-10/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": "X", "syncDirection": "sideways"}, "syncDirection"),
        ({"name": "X", "remoteBaseUrl": "not a url"}, "remoteBaseUrl"),
        ({"name": "X", "remoteFlavor": "onprem"}, "remoteFlavor"),
        ({"name": "X", "id": "Bad Id!"}, "id"),
        ({"name": "X", "requireSignature": True}, "requireSignature"),
        ({"name": "X", "enabled": "maybe"}, "enabled"),
    ],
)
def test_invalid_input_gets_a_message_per_field(api, payload, field):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert errors[field] and all(isinstance(m, str) and m for m in errors[field])
    assert Organization.objects.count() == 0


def test_a_duplicate_id_is_a_field_error(api, make_org):
    make_org(public_id="org-1")
    response = api.post(URL, {"name": "Other", "id": "org-1"}, format="json")
    assert response.status_code == 400
    assert "id" in response.json()


def test_mappings_crud_and_validation(api, make_org):
    make_org(public_id="org-m")
    base = f"{URL}org-m/project-mappings/"
    created = api.post(
        base,
        {"localProjectKey": "LOC", "remoteProjectKey": "REM", "issueTypeMap": {"Bug": "Defect"}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert api.get(base).json()[0]["remoteProjectKey"] == "REM"
    patched = api.patch(f"{base}{pk}/", {"pushJql": 'labels = "shared"'}, format="json")
    assert patched.json()["pushJql"] == 'labels = "shared"'
    bad = api.post(base, {"localProjectKey": "lower", "remoteProjectKey": "R2"}, format="json")
    assert bad.status_code == 400 and "localProjectKey" in bad.json()
    dup = api.post(base, {"localProjectKey": "LOC", "remoteProjectKey": "R3"}, format="json")
    assert dup.status_code == 400
    bad_map = api.post(
        base,
        {"localProjectKey": "L2", "remoteProjectKey": "R2", "issueTypeMap": ["Bug"]},
        format="json",
    )
    assert bad_map.status_code == 400 and "issueTypeMap" in bad_map.json()

    fields = f"{URL}org-m/field-mappings/"
    ok = api.post(
        fields,
        {"localField": "priority", "remoteField": "priority", "valueMap": {"High": "Major"}},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["direction"] == "both"
    bad = api.post(
        fields,
        {"localField": "status", "remoteField": "status", "valueMap": {"A": "X", "B": "X"}},
        format="json",
    )
    assert bad.status_code == 400 and "valueMap" in bad.json()
    bad = api.post(fields, {"localField": "bogus", "remoteField": "summary"}, format="json")
    assert bad.status_code == 400 and "localField" in bad.json()
    assert api.delete(f"{base}{pk}/").status_code == 204


def test_anonymous_requests_get_401(make_org):
    make_org(public_id="org-a")
    client = APIClient()
    for method, url in (("get", URL), ("post", URL), ("get", f"{URL}org-a/")):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 401
    assert client.get("/api/schema/").status_code in (401, 403)


def test_non_staff_get_403_even_with_permissions(django_user_model):
    user = django_user_model.objects.create_user(username="u", password="pw-123456789")
    grant(user, "view_organization", "add_organization")
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "X"}, format="json").status_code == 403


def test_staff_need_the_model_permission(django_user_model, make_org):
    make_org(public_id="org-s")
    user = django_user_model.objects.create_user(
        username="staff", password="pw-123456789", is_staff=True
    )
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(URL).status_code == 403
    grant(user, "view_organization")
    user = django_user_model.objects.get(pk=user.pk)
    client.force_authenticate(user)
    assert client.get(URL).status_code == 200
    assert client.post(URL, {"name": "X"}, format="json").status_code == 403
    assert client.patch(f"{URL}org-s/", {"name": "Y"}, format="json").status_code == 403


def test_token_and_basic_authentication(superuser, make_org):
    token = Token.objects.create(user=superuser)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(URL).status_code == 200
    basic = base64.b64encode(b"root:root-pass-123").decode()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {basic}")
    assert client.get(URL).status_code == 200
    wrong = base64.b64encode(b"root:wrong").decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {wrong}")
    assert client.get(URL).status_code == 401


def test_session_authentication(client, superuser):
    client.force_login(superuser)
    assert client.get(URL).status_code == 200


def test_the_openapi_schema_describes_the_api(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/organizations/" in schema["paths"]
    assert "/api/organizations/{org_id}/field-mappings/" in schema["paths"]
