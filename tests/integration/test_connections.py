"""Scenario B's handshake over the API and the public endpoints, and the attacks it refuses.

The end-to-end tests run both sides in this install (two organizations, one inviting, one
accepting) over real HTTP through the live server; the attack tests play the partner's
install themselves: their own key pair, their own signatures."""

import base64
import json
import time

import pytest

from organizations import connections, envelope, services
from organizations.models import Connection, ConnectionMessage, Organization
from syncapp.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def inviter(make_org):
    org = make_org(name="Globex", public_id="org-globex")
    services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REMOTE_PROJ"
    )
    services.field_mapping_create(organization=org, local_field="summary", remote_field="summary")
    return org


def _invite(api, org) -> tuple[str, dict]:
    response = api.post(f"/api/organizations/{org.public_id}/invitation/")
    assert response.status_code == 201, response.content
    text = response.json()["invitation"]
    return text, envelope.decode_invitation(text)


class FakePartner:
    """The partner's install, as far as our endpoints can tell: a key pair and an id."""

    def __init__(self):
        self.private_key, self.public_key = envelope.generate_key_pair()
        self.connection_id = "f" * 32
        self.base_url = "http://127.0.0.1:9"

    def callback(self, client, data: dict, **overrides):
        body = {
            "token": data["token"],
            "baseUrl": self.base_url,
            "connectionId": self.connection_id,
            "publicKey": self.public_key,
            "projects": ["OWN"],
            **overrides,
        }
        return client.post(
            f"/connections/{data['connectionId']}/handshake/",
            data=json.dumps(body),
            content_type="application/json",
        )

    def message(self, client, connection_id, payload, *, key=None, now=None, headers=None):
        body = json.dumps(payload).encode()
        headers = headers or envelope.signed_headers(
            private_key=key or self.private_key, body=body, now=now
        )
        return client.post(
            f"/connections/{connection_id}/messages/",
            data=body,
            content_type="application/json",
            headers=headers,
        )

    def hello(self, client, connection_id, **kwargs):
        return self.message(
            client, connection_id, {"type": "hello", "connectionId": self.connection_id}, **kwargs
        )


def _state(connection_id):
    connection = Connection.objects.get(connection_id=connection_id)
    return {
        "messages": ConnectionMessage.objects.filter(connection=connection).count(),
        "partner_key": connection.partner_public_key,
        "partner_hello": connection.partner_hello_verified,
        "spent": connection.invitation_spent_at,
        "partner_url": connection.partner_base_url,
        "disconnected": connection.disconnected_at,
    }


# --- invitation -----------------------------------------------------------------------------


def test_an_invitation_offers_the_mappings_and_stores_only_the_tokens_hash(api, inviter):
    text, data = _invite(api, inviter)
    assert data["baseUrl"] == "http://127.0.0.1:8000" or data["baseUrl"].startswith("http")
    # What we send: our projects, and the fields that sync our way out (defaults included,
    # the mapped-only ones only when mapped).
    assert data["offers"] == connections.organization_offer(inviter)
    assert data["offers"]["projects"] == ["LOC"]
    assert {"summary", "description", "comment"} <= set(data["offers"]["fields"])
    assert "reporter" not in data["offers"]["fields"]
    inviter.refresh_from_db()
    assert (inviter.connection_type, inviter.handshake_status) == ("app", "pending")
    connection = inviter.connection
    assert len(data["token"]) >= 43  # 256 bits in base64url
    assert data["token"] not in json.dumps(
        {f.name: str(getattr(connection, f.name)) for f in Connection._meta.concrete_fields}
    )
    assert data["publicKey"] == connection.signing_public_key
    assert connection.signing_private_key not in text
    detail = api.get(f"/api/organizations/{inviter.public_id}/").json()
    assert detail["connectionType"] == "app" and detail["handshakeStatus"] == "pending"


def test_the_private_key_is_encrypted_at_rest(api, inviter):
    from django.db import connection as db

    _invite(api, inviter)
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT signing_private_key FROM organizations_connection WHERE organization_id = %s",
            [inviter.pk],
        )
        stored = cursor.fetchone()[0]
    assert stored.startswith("enc1:")
    assert inviter.connection.signing_private_key not in stored


def test_a_new_invitation_replaces_the_unused_one(api, inviter, client):
    _, first = _invite(api, inviter)
    _, second = _invite(api, inviter)
    partner = FakePartner()
    assert partner.callback(client, first).status_code == 403
    assert partner.callback(client, second).status_code == 200


# --- the callback: attacks -----------------------------------------------------------------


def test_the_token_is_spent_once_and_a_second_use_stores_nothing(api, inviter, client):
    _, data = _invite(api, inviter)
    partner = FakePartner()
    assert partner.callback(client, data).status_code == 200
    before = _state(data["connectionId"])
    assert before["partner_key"] == partner.public_key and before["spent"]
    intruder = FakePartner()
    intruder.base_url = "http://127.0.0.1:10"
    response = intruder.callback(client, data)
    assert response.status_code == 409
    assert "already been used" in response.json()["detail"]
    assert _state(data["connectionId"]) == before


def test_an_expired_token_is_refused_and_nothing_is_stored(api, inviter, client, settings):
    settings.CONNECTION_INVITATION_TTL_SECONDS = 0
    # Expired at once: decoded here without the expiry check, as a partner could.
    text = api.post(f"/api/organizations/{inviter.public_id}/invitation/").json()["invitation"]
    data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    before = _state(data["connectionId"])
    response = FakePartner().callback(client, data)
    assert response.status_code == 403
    assert _state(data["connectionId"]) == before and not before["spent"]


def test_a_wrong_token_is_refused(api, inviter, client):
    _, data = _invite(api, inviter)
    before = _state(data["connectionId"])
    response = FakePartner().callback(client, {**data, "token": data["token"][:-2] + "xx"})
    assert response.status_code == 403
    assert _state(data["connectionId"]) == before


@pytest.mark.parametrize(
    "overrides",
    [
        {"publicKey": "not-a-key"},
        {"connectionId": "../../etc"},
        {"baseUrl": "http://169.254.169.254"},
        {"baseUrl": "gopher://x"},
        {"projects": "OWN"},
    ],
)
def test_a_malformed_callback_is_refused_and_the_token_stays_unspent(
    api, inviter, client, overrides
):
    _, data = _invite(api, inviter)
    before = _state(data["connectionId"])
    response = FakePartner().callback(client, data, **overrides)
    assert 400 <= response.status_code < 500
    assert _state(data["connectionId"]) == before


def test_a_callback_for_an_unknown_connection_is_404(client):
    response = client.post(
        "/connections/" + "0" * 32 + "/handshake/", data="{}", content_type="application/json"
    )
    assert response.status_code == 404
    response = client.post(
        "/connections/x/handshake/", data="not json", content_type="application/json"
    )
    assert response.status_code in (400, 404)


# --- signed messages: attacks ---------------------------------------------------------------


@pytest.fixture
def connected(api, inviter, client):
    """An invitation spent by the (fake) partner: its key is known, no hello yet."""
    _, data = _invite(api, inviter)
    partner = FakePartner()
    assert partner.callback(client, data).status_code == 200
    return partner, data["connectionId"]


def test_a_signed_hello_is_verified_once(connected, client):
    partner, cid = connected
    assert partner.hello(client, cid).status_code == 200
    assert _state(cid)["partner_hello"] and _state(cid)["messages"] == 1


def test_a_bad_signature_is_refused_and_nothing_is_stored(connected, client):
    partner, cid = connected
    other_key, _ = envelope.generate_key_pair()
    before = _state(cid)
    response = partner.hello(client, cid, key=other_key)
    assert response.status_code == 401 and "signature" in response.json()["detail"]
    assert _state(cid) == before


def test_a_replayed_message_is_refused(connected, client):
    partner, cid = connected
    body = json.dumps({"type": "hello", "connectionId": partner.connection_id}).encode()
    headers = envelope.signed_headers(private_key=partner.private_key, body=body)
    payload = json.loads(body)
    assert partner.message(client, cid, payload, headers=headers).status_code == 200
    before = _state(cid)
    response = partner.message(client, cid, payload, headers=headers)
    assert response.status_code == 409 and "replay" in response.json()["detail"]
    assert _state(cid) == before


@pytest.mark.parametrize("offset", [-envelope.WINDOW_SECONDS - 60, envelope.WINDOW_SECONDS + 60])
def test_a_message_outside_the_window_is_refused(connected, client, offset):
    partner, cid = connected
    before = _state(cid)
    response = partner.hello(client, cid, now=time.time() + offset)
    assert response.status_code == 401 and "window" in response.json()["detail"]
    assert _state(cid) == before


def test_a_message_after_disconnect_is_refused(connected, client, inviter, api):
    partner, cid = connected
    assert partner.message(client, cid, {"type": "disconnect"}).status_code == 200
    inviter.refresh_from_db()
    assert inviter.handshake_status == "disconnected"
    before = _state(cid)
    response = partner.hello(client, cid)
    assert response.status_code == 410
    assert _state(cid) == before
    # Nor can the invitation be used again.
    assert api.post(f"/api/organizations/{inviter.public_id}/invitation/").status_code == 409


def test_unknown_types_unknown_connections_and_garbage_are_4xx(connected, client):
    partner, cid = connected
    before = _state(cid)
    response = partner.message(client, cid, {"type": "issueChanged"})
    assert response.status_code == 422 and "unsupported message type" in response.json()["detail"]
    assert partner.message(client, "0" * 32, {"type": "hello"}).status_code == 404
    assert partner.message(client, "zz", {"type": "hello"}).status_code == 404
    response = client.post(
        f"/connections/{cid}/messages/", data=b"\xff\xfe", content_type="application/json"
    )
    assert response.status_code == 401  # unsigned
    body = b"[1]"
    headers = envelope.signed_headers(private_key=partner.private_key, body=body)
    response = client.post(
        f"/connections/{cid}/messages/",
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 400
    response = client.post(
        f"/connections/{cid}/messages/",
        data=b"x" * (connections.MAX_MESSAGE_BYTES + 1),
        content_type="application/json",
    )
    assert response.status_code == 413
    assert _state(cid) == before


def test_a_hello_naming_another_connection_is_refused(connected, client):
    partner, cid = connected
    before = _state(cid)
    response = partner.message(client, cid, {"type": "hello", "connectionId": "e" * 32})
    assert response.status_code == 400
    assert _state(cid) == before


def test_a_key_rotation_signed_by_the_old_key_replaces_the_partners_key(connected, client):
    partner, cid = connected
    new_private, new_public = envelope.generate_key_pair()
    response = partner.message(client, cid, {"type": "keyRotation", "publicKey": new_public})
    assert response.status_code == 200
    assert _state(cid)["partner_key"] == new_public
    assert partner.hello(client, cid).status_code == 401  # the old key no longer signs
    assert partner.hello(client, cid, key=new_private).status_code == 200


def test_a_key_rotation_signed_by_another_key_is_refused(connected, client):
    partner, cid = connected
    attacker_private, attacker_public = envelope.generate_key_pair()
    before = _state(cid)
    response = partner.message(
        client, cid, {"type": "keyRotation", "publicKey": attacker_public}, key=attacker_private
    )
    assert response.status_code == 401
    assert _state(cid) == before


# --- accept: refusals -----------------------------------------------------------------------


def test_accepting_an_expired_or_garbled_invitation_creates_nothing(api, inviter, settings):
    settings.CONNECTION_INVITATION_TTL_SECONDS = 0
    text = api.post(f"/api/organizations/{inviter.public_id}/invitation/").json()["invitation"]
    count = Organization.objects.count()
    for invitation in (text, "garbage", text[:-5]):
        response = api.post(
            "/api/connections/accept/",
            {
                "invitation": invitation,
                "name": "Partner",
                "projectMappings": [{"localProjectKey": "OWN", "remoteProjectKey": "LOC"}],
            },
            format="json",
        )
        assert response.status_code == 400, response.content
    assert Organization.objects.count() == count


def test_accepting_when_the_inviter_is_unreachable_or_refused_creates_nothing(
    api, inviter, settings
):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    text, _ = _invite(api, inviter)
    count = Organization.objects.count()
    response = api.post(
        "/api/connections/accept/",
        {
            "invitation": text,
            "name": "Partner",
            "projectMappings": [{"localProjectKey": "OWN", "remoteProjectKey": "LOC"}],
        },
        format="json",
    )
    assert response.status_code == 400 and "could not be reached" in response.json()["detail"]
    settings.PUBLIC_BASE_URL = "http://10.1.2.3"
    text, _ = _invite(api, inviter)
    response = api.post(
        "/api/connections/accept/",
        {
            "invitation": text,
            "name": "Partner",
            "projectMappings": [{"localProjectKey": "OWN", "remoteProjectKey": "LOC"}],
        },
        format="json",
    )
    assert response.status_code == 400 and "refused" in response.json()["detail"]
    assert Organization.objects.count() == count


def test_accepting_a_project_the_inviter_does_not_offer_is_refused(api, inviter):
    text, _ = _invite(api, inviter)
    count = Organization.objects.count()
    response = api.post(
        "/api/connections/accept/",
        {
            "invitation": text,
            "name": "Partner",
            "projectMappings": [{"localProjectKey": "OWN", "remoteProjectKey": "SECRET"}],
        },
        format="json",
    )
    assert response.status_code == 400 and "does not offer" in response.json()["detail"]
    assert Organization.objects.count() == count


def test_the_accept_and_invitation_apis_need_permissions(client, inviter):
    assert client.post(f"/api/organizations/{inviter.public_id}/invitation/").status_code in (
        401,
        403,
    )
    assert client.post("/api/connections/accept/", {}).status_code in (401, 403)
    assert client.post(f"/api/organizations/{inviter.public_id}/disconnect/").status_code in (
        401,
        403,
    )


# --- both sides over HTTP -------------------------------------------------------------------


@pytest.fixture
def over_http(live_server, settings):
    """This install answers at the live server's URL; Celery tasks run in the caller."""
    settings.PUBLIC_BASE_URL = live_server.url
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield live_server
    finally:
        celery_app.conf.task_always_eager = eager


@pytest.mark.django_db(transaction=True)
def test_invitation_accept_both_active_rotate_and_disconnect_over_http(over_http, api, inviter):
    text, data = _invite(api, inviter)
    response = api.post(
        "/api/connections/accept/",
        {
            "invitation": text,
            "name": "Globex (their install)",
            "projectMappings": [{"localProjectKey": "OWN", "remoteProjectKey": "LOC"}],
            "syncDirection": "bidirectional",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    accepted = response.json()
    assert accepted["connectionType"] == "app"
    assert accepted["syncDirection"] == "bidirectional"
    assert accepted["projectMappings"][0]["localProjectKey"] == "OWN"
    assert accepted["hasRemoteHandshakeToken"] and accepted["remoteHandshakeToken"] is None
    acceptor = Organization.objects.get(public_id=accepted["id"])
    assert acceptor.remote_handshake_token == text
    assert acceptor.remote_token == "" and inviter.remote_token == ""
    for org in (inviter, acceptor):
        detail = api.get(f"/api/organizations/{org.public_id}/").json()
        assert detail["handshakeStatus"] == "active", (org, detail)
    inviting, accepting = inviter.connection, acceptor.connection
    inviting.refresh_from_db()
    assert inviting.partner_connection_id == accepting.connection_id
    assert inviting.partner_public_key == accepting.signing_public_key
    assert inviting.partner_projects == ["OWN"]
    assert accepting.partner_fields == connections.organization_offer(inviter)["fields"]
    # What each side sends, as the other accepted it by the handshake.
    assert accepting.offer_in_accepted == {"version": 1, **connections.organization_offer(inviter)}
    assert inviting.offer_in_accepted["projects"] == ["OWN"]
    assert inviting.offer_in_accepted["fields"] == accepting.offer_out["fields"]

    # The token is spent: accepting the same invitation again is refused, nothing kept.
    count = Organization.objects.count()
    again = api.post(
        "/api/connections/accept/",
        {
            "invitation": text,
            "name": "Again",
            "projectMappings": [{"localProjectKey": "OWN", "remoteProjectKey": "LOC"}],
        },
        format="json",
    )
    assert again.status_code == 409 and "already been used" in again.json()["detail"]
    assert Organization.objects.count() == count

    # Key rotation: the partner stores the new key.
    old_key = accepting.signing_public_key
    response = api.post(f"/api/organizations/{acceptor.public_id}/rotate-key/")
    assert response.status_code == 200, response.content
    accepting.refresh_from_db()
    inviting.refresh_from_db()
    assert accepting.signing_public_key != old_key
    assert inviting.partner_public_key == accepting.signing_public_key

    # Disconnect on one side: both show it, and later messages are refused.
    response = api.post(f"/api/organizations/{acceptor.public_id}/disconnect/")
    assert response.status_code == 200 and response.json()["handshakeStatus"] == "disconnected"
    detail = api.get(f"/api/organizations/{inviter.public_id}/").json()
    assert detail["handshakeStatus"] == "disconnected"
    from organizations.connections import (
        ConnectionRefused,
        PartnerUnavailable,
        connection_send_hello,
    )

    inviting.refresh_from_db()
    with pytest.raises(ConnectionRefused, match="410") as refused:
        connection_send_hello(connection=inviting)
    assert not isinstance(refused.value, PartnerUnavailable)  # a 4xx is never retried


# --- the admin ------------------------------------------------------------------------------


def _invitation_from_page(page: str) -> str:
    import re

    match = re.search(r'<textarea id="connection-invitation"[^>]*>([^<]+)</textarea>', page)
    assert match, page
    return match.group(1).strip()


@pytest.mark.django_db(transaction=True)
def test_the_admin_creates_an_invitation_and_the_other_side_accepts_it(
    over_http, client, superuser, inviter
):
    client.force_login(superuser)
    change = f"/admin/organizations/organization/{inviter.pk}/change/"
    assert 'id="create-invitation"' in client.get(change).content.decode()
    response = client.post(f"/admin/organizations/organization/{inviter.pk}/invitation/")
    assert response.status_code == 200
    text = _invitation_from_page(response.content.decode())
    assert envelope.decode_invitation(text)["offers"]["projects"] == ["LOC"]

    changelist = client.get("/admin/organizations/organization/").content.decode()
    assert 'id="accept-invitation-link"' in changelist
    accept = "/admin/organizations/organization/accept-invitation/"
    assert client.get(accept).status_code == 200
    # A project the invitation does not offer: the form says so, nothing is created.
    count = Organization.objects.count()
    response = client.post(
        accept,
        {
            "invitation": text,
            "name": "Globex (their install)",
            "project_mappings": "OWN = NOPE",
            "sync_direction": "push",
        },
    )
    assert response.status_code == 200 and "does not offer" in response.content.decode()
    assert Organization.objects.count() == count
    response = client.post(
        accept,
        {
            "invitation": text,
            "name": "Globex (their install)",
            "project_mappings": "own = LOC",
            "sync_direction": "bidirectional",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    acceptor = Organization.objects.get(name="Globex (their install)")
    assert acceptor.handshake_status == "active"
    assert list(acceptor.project_mappings.values_list("local_project_key", flat=True)) == ["OWN"]
    inviter.refresh_from_db()
    assert inviter.handshake_status == "active"

    page = client.get(f"/admin/organizations/organization/{acceptor.pk}/change/").content
    assert b'id="disconnect"' in page
    # An app connection's page: the connection panel, no partner Jira site or webhook panel.
    assert b'id="connection-panel"' in page and b'id="partner-setup"' not in page
    assert b'name="remote_token"' not in page and b'name="remote_base_url"' not in page
    key = Connection.objects.get(organization=acceptor).signing_public_key
    response = client.post(f"/admin/organizations/organization/{acceptor.pk}/rotate-key/")
    assert response.status_code == 302
    rotated = Connection.objects.get(organization=acceptor)
    assert rotated.signing_public_key != key and rotated.key_rotated_at is not None
    assert Connection.objects.get(organization=inviter).partner_public_key == (
        rotated.signing_public_key
    )
    response = client.post(f"/admin/organizations/organization/{acceptor.pk}/disconnect/")
    assert response.status_code == 302
    inviter.refresh_from_db()
    assert inviter.handshake_status == "disconnected"


def test_the_admin_accept_page_refuses_garbage_and_needs_add_permission(
    client, superuser, django_user_model
):
    client.force_login(superuser)
    accept = "/admin/organizations/organization/accept-invitation/"
    response = client.post(
        accept,
        {"invitation": "garbage", "name": "X", "project_mappings": "A=B", "sync_direction": "push"},
    )
    assert response.status_code == 200
    assert "not a connection invitation" in response.content.decode()
    staff = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(accept).status_code == 403


def test_failed_proofs_are_throttled_per_address_and_connection(connected, client, settings):
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 3
    partner, cid = connected
    other_key, _ = envelope.generate_key_pair()
    for _ in range(3):
        assert partner.hello(client, cid, key=other_key).status_code == 401
    refused = partner.hello(client, cid)  # even a good one, from this address, for a while
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert _state(cid)["partner_hello"] is False
    body = json.dumps({"type": "hello", "connectionId": partner.connection_id}).encode()
    response = client.post(
        f"/connections/{cid}/messages/",
        data=body,
        content_type="application/json",
        headers=envelope.signed_headers(private_key=partner.private_key, body=body),
        REMOTE_ADDR="10.9.8.7",
    )
    assert response.status_code == 200
    # Wrong invitation tokens count the same way.
    for _ in range(3):
        response = client.post(
            f"/connections/{cid}/handshake/",
            data=json.dumps({"token": "guess"}),
            content_type="application/json",
            REMOTE_ADDR="10.1.1.1",
        )
        assert response.status_code == 403
    response = client.post(
        f"/connections/{cid}/handshake/",
        data=json.dumps({"token": "guess"}),
        content_type="application/json",
        REMOTE_ADDR="10.1.1.1",
    )
    assert response.status_code == 429


def test_changing_the_direction_of_an_app_connection_keeps_its_handshake(make_org):
    """Push <-> two-way is what the install applies of the partner's changes; the handshake of
    an app connection is its connection's, not the partner Jira webhook's."""
    org = make_org(name="Their install", sync_direction="bidirectional")
    Organization.objects.filter(pk=org.pk).update(connection_type="app", handshake_status="active")
    org.refresh_from_db()
    activated = org.handshake_activated_at

    org = services.organization_disable_two_way(organization=org)
    assert (org.sync_direction, org.handshake_status) == ("push", "active")
    org = services.organization_enable_two_way(organization=org)
    assert (org.sync_direction, org.handshake_status) == ("bidirectional", "active")
    org.refresh_from_db()
    assert org.handshake_status == "active" and org.handshake_activated_at == activated
