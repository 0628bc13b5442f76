"""Attacks on both webhook endpoints over real HTTP (Django's live server: runserver's own
request handler): deep JSON, NUL bytes, chunked bodies, refusals that cost nothing."""

import http.client
import json
from urllib.parse import urlsplit

import pytest

from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_SECRET = "local-secret-for-boundary-tests"


def delivery_body(key: str = "REMOTE_PROJ-1", event: str = "jira:issue_updated") -> bytes:
    return json.dumps(
        {
            "timestamp": 1700000000000,
            "webhookEvent": event,
            "issue": {"id": "10001", "key": key, "fields": {"project": {"key": "REMOTE_PROJ"}}},
        }
    ).encode()


@pytest.fixture(autouse=True)
def local_secret(settings):
    settings.LOCAL_WEBHOOK_SECRET = LOCAL_SECRET


def send(base: str, path: str, body: bytes, *, chunked: bool = False, headers=None):
    """One POST over a real socket; `chunked` sends Transfer-Encoding: chunked, no length."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if chunked:
            conn.putrequest("POST", path)
            for name, value in all_headers.items():
                conn.putheader(name, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body), 100):
                piece = body[start : start + 100]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request("POST", path, body=body, headers=all_headers)
        response = conn.getresponse()
        text = response.read()
        return response.status, text
    finally:
        conn.close()


def incoming_path(org, secret=None) -> str:
    secret = org.incoming_secret if secret is None else secret
    return f"/webhooks/incoming/{org.public_id}/?secret={secret}"


LOCAL_PATH = f"/webhooks/local/?secret={LOCAL_SECRET}"


# --- deep JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize("deep", [b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_deep_json_is_refused_with_400_on_both_endpoints(live_server, two_way_org, deep):
    for path in (incoming_path(two_way_org), LOCAL_PATH):
        status, text = send(live_server.url, path, deep)
        assert status == 400, (path, status, text[:300])
        assert json.loads(text)["error"] == "invalid_json"
    assert WebhookDelivery.objects.count() == 0


def test_json_nested_deeper_than_the_limit_is_refused_but_a_real_payload_passes(
    live_server, two_way_org
):
    # 200 levels: the decoder copes, but no Jira payload is anywhere near as deep.
    nested = json.loads("[" * 200 + "]" * 200)
    deep = json.dumps({"webhookEvent": "jira:issue_updated", "x": nested})
    status, _ = send(live_server.url, incoming_path(two_way_org), deep.encode())
    assert status == 400
    status, _ = send(live_server.url, incoming_path(two_way_org), delivery_body())
    assert status == 202
    assert WebhookDelivery.objects.count() == 1


def test_unauthenticated_deep_json_is_refused_as_unauthenticated(live_server, two_way_org):
    status, text = send(live_server.url, incoming_path(two_way_org, "wrong"), b"[" * 100_000)
    assert status == 401 and json.loads(text)["error"] == "unauthorized"
    status, text = send(live_server.url, "/webhooks/incoming/org-nope/?secret=x", b"[" * 100_000)
    assert status == 401 and json.loads(text)["error"] == "unauthorized"
    status, text = send(live_server.url, "/webhooks/local/?secret=wrong", b"[" * 100_000)
    assert status == 401
    assert WebhookDelivery.objects.count() == 0


# --- NUL and other control characters ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        delivery_body(key="REMOTE_PROJ-1\u0000"),
        delivery_body(event="jira:issue_updated\u0000"),
        delivery_body(key="REMOTE\ud800-1"),
        json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"id": "1\u00002"}}).encode(),
        # Found by the fuzz test: the project key is looked up in the mappings.
        delivery_body().replace(b'"key": "REMOTE_PROJ"}', b'"key": "\\u0000"}'),
    ],
)
def test_a_nul_or_a_lone_surrogate_in_a_key_or_event_is_a_400(live_server, two_way_org, body):
    for path in (incoming_path(two_way_org), LOCAL_PATH):
        status, text = send(live_server.url, path, body)
        assert status == 400, (path, status, text[:300])
        assert json.loads(text)["error"] == "invalid_field"
    assert WebhookDelivery.objects.count() == 0


def test_a_nul_in_a_summary_is_stored_as_sent(live_server, two_way_org):
    payload = json.loads(delivery_body())
    payload["issue"]["fields"]["summary"] = "nul \u0000 inside"
    body = json.dumps(payload).encode()
    status, _ = send(live_server.url, incoming_path(two_way_org), body)
    assert status == 202
    assert WebhookDelivery.objects.get().body.encode() == body


# --- chunked transfer encoding -----------------------------------------------------------------


def test_a_chunked_delivery_is_read_and_stored_on_both_endpoints(live_server, two_way_org):
    body = delivery_body()
    status, text = send(live_server.url, incoming_path(two_way_org), body, chunked=True)
    assert status == 202, text
    status, text = send(live_server.url, LOCAL_PATH, body, chunked=True)
    assert status == 202, text
    stored = list(WebhookDelivery.objects.values_list("source", "body"))
    assert sorted(s for s, _ in stored) == ["local", "partner"]
    assert all(b.encode() == body for _, b in stored)


def test_a_chunked_body_over_the_limit_is_refused(live_server, two_way_org, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    payload = json.loads(delivery_body())
    payload["pad"] = "x" * 5000
    status, _ = send(
        live_server.url, incoming_path(two_way_org), json.dumps(payload).encode(), chunked=True
    )
    assert status == 413
    assert WebhookDelivery.objects.count() == 0


def test_a_nul_in_a_kept_header_is_stored_safely(live_server, two_way_org):
    headers = {"X-Atlassian-Webhook-Identifier": "id\x00-1", "User-Agent": "agent\x00\x01"}
    for path in (incoming_path(two_way_org), LOCAL_PATH):
        status, text = send(live_server.url, path, delivery_body(), headers=headers)
        assert status == 202, (path, status, text[:300])
        # The same identifier again is the same delivery.
        status, text = send(live_server.url, path, delivery_body(), headers=headers)
        assert status == 200 and json.loads(text)["duplicate"] is True
    kept = WebhookDelivery.objects.values_list("headers", flat=True)
    assert len(kept) == 2
    assert all("\x00" not in json.dumps(h, ensure_ascii=False) for h in kept)


def test_malformed_chunks_are_a_400(live_server, two_way_org):
    parts = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("POST", incoming_path(two_way_org))
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"zz\r\n{}\r\n0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"] == "invalid_body"
    finally:
        conn.close()
    assert WebhookDelivery.objects.count() == 0


def test_a_known_partners_bad_chunked_body_gets_the_same_refusal_and_counts_no_failure(
    live_server, two_way_org, settings
):
    """With the partner's credentials kept (accepted deliveries), a chunked body over the
    limit is a 413 and malformed chunks a 400, as for anyone: the body is read once, and
    the request answered afresh is not read again (nor counted as a failed authentication:
    with a limit of one failure, the next delivery is still accepted)."""
    for n in range(2):
        headers = {"X-Atlassian-Webhook-Identifier": f"warm-{n}"}
        status, text = send(
            live_server.url, incoming_path(two_way_org), delivery_body(), headers=headers
        )
        assert status == 202, text
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 1
    payload = json.loads(delivery_body())
    payload["pad"] = "x" * 5000
    status, _ = send(
        live_server.url, incoming_path(two_way_org), json.dumps(payload).encode(), chunked=True
    )
    assert status == 413
    parts = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("POST", incoming_path(two_way_org))
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"zz\r\n{}\r\n0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"] == "invalid_body"
    finally:
        conn.close()
    assert WebhookDelivery.objects.count() == 2
    headers = {"X-Atlassian-Webhook-Identifier": "after"}
    status, text = send(
        live_server.url, incoming_path(two_way_org), delivery_body(), headers=headers
    )
    assert status == 202, text
