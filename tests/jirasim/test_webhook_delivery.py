"""Webhook delivery: signatures, headers, retry policy, filters and the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import requests

from jirasim.testing import WebhookReceiver

from .helpers import Api


def _register(sim, url, **body):
    payload = {
        "name": "sync",
        "url": url,
        "events": ["jira:issue_created", "jira:issue_updated", "comment_created"],
        "filters": {"issue-related-events-section": "project = ENG"},
        "excludeBody": False,
        **body,
    }
    r = requests.post(f"{sim.base_url}/rest/webhooks/1.0/webhook", json=payload, auth=sim.auth)
    assert r.status_code == 201, r.text
    return r.json()


def test_admin_webhook_api_registers_lists_and_deletes(sim, receiver):
    hook = _register(sim, receiver.url)
    assert hook["self"].startswith(sim.base_url + "/rest/webhooks/1.0/webhook/")
    assert hook["filters"] == {"issue-related-events-section": "project = ENG"}
    url = f"{sim.base_url}/rest/webhooks/1.0/webhook"
    listed = requests.get(url, auth=sim.auth).json()
    assert [h["name"] for h in listed] == ["sync"]
    assert requests.get(hook["self"], auth=sim.auth).json()["url"] == receiver.url
    assert requests.delete(hook["self"], auth=sim.auth).status_code == 204
    assert requests.get(hook["self"], auth=sim.auth).status_code == 404
    assert requests.get(url, auth=sim.auth).json() == []


def test_webhook_api_rejects_unknown_events(sim):
    r = requests.post(
        f"{sim.base_url}/rest/webhooks/1.0/webhook",
        json={"name": "x", "url": "http://127.0.0.1:9/", "events": ["jira:nonsense"]},
        auth=sim.auth,
    )
    assert r.status_code == 400
    assert r.json()["errors"]["events"]


def test_signature_is_hmac_sha256_of_the_raw_body(sim, receiver):
    _register(sim, receiver.url, secret="topsecret")
    Api(sim).create()
    got = receiver.wait_for(1)[0]
    expected = hmac.new(b"topsecret", got["raw"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-Hub-Signature"] == f"sha256={expected}"
    assert got["headers"]["Content-Type"].startswith("application/json")
    assert got["headers"]["X-Atlassian-Webhook-Flow"] == "Primary"
    assert got["headers"]["X-Atlassian-Webhook-Identifier"]
    assert "X-Atlassian-Webhook-Retry" not in got["headers"]


def test_no_signature_without_secret_and_url_called_as_registered(sim, receiver):
    _register(sim, receiver.url + "?secret=abc&x=1")
    Api(sim).create()
    got = receiver.wait_for(1)[0]
    assert got["path"] == "/hook?secret=abc&x=1"
    assert "X-Hub-Signature" not in got["headers"]


def test_jql_filter_and_event_list_select_deliveries(sim, receiver):
    _register(sim, receiver.url, events=["jira:issue_created"])
    api = Api(sim)
    api.create()
    api.ok(
        api.post(
            "/issue",
            {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "o"}},
        ),
        201,
    )
    api.ok(api.put("/issue/ENG-1", {"fields": {"summary": "changed"}}), 204)
    sim.wait_idle()
    time.sleep(0.1)
    events = [(r["json"]["webhookEvent"], r["json"]["issue"]["key"]) for r in receiver.requests]
    assert events == [("jira:issue_created", "ENG-1")]


def test_exclude_body_sends_an_empty_post(sim, receiver):
    _register(sim, receiver.url, excludeBody=True)
    Api(sim).create()
    got = receiver.wait_for(1)[0]
    assert got["raw"] == b""


def test_retries_5xx_with_same_identifier_and_retry_header(sim, receiver):
    receiver.responses = [503, 500]
    _register(sim, receiver.url, secret="k")
    Api(sim).create()
    got = receiver.wait_for(3)
    assert [r["status"] for r in got] == [503, 500, 200]
    ids = {r["headers"]["X-Atlassian-Webhook-Identifier"] for r in got}
    assert len(ids) == 1
    assert "X-Atlassian-Webhook-Retry" not in got[0]["headers"]
    assert got[1]["headers"]["X-Atlassian-Webhook-Retry"] == "1"
    assert got[2]["headers"]["X-Atlassian-Webhook-Retry"] == "2"
    assert got[0]["raw"] == got[2]["raw"]
    assert sim.wait_idle()
    (d,) = sim.deliveries()
    assert d["status"] == "delivered"
    assert [a["status"] for a in d["attempts"]] == [503, 500, 200]


def test_retryable_4xx_codes_are_retried(sim, receiver):
    receiver.responses = [408, 409, 425, 429]
    _register(sim, receiver.url)
    Api(sim).create()
    assert [r["status"] for r in receiver.wait_for(5)] == [408, 409, 425, 429, 200]


def test_400_is_not_retried(sim, receiver):
    receiver.responses = [400]
    _register(sim, receiver.url)
    Api(sim).create()
    receiver.wait_for(1)
    assert sim.wait_idle()
    time.sleep(0.2)
    assert len(receiver.requests) == 1
    assert sim.deliveries()[0]["status"] == "failed"


def test_retries_are_bounded(sim, receiver):
    receiver.default_status = 500
    _register(sim, receiver.url)
    Api(sim).create()
    assert sim.wait_idle(timeout=10)
    d = sim.deliveries()[0]
    assert d["status"] == "failed"
    assert len(d["attempts"]) == 1 + sim.dispatcher.max_retries
    assert len(receiver.requests) == 1 + sim.dispatcher.max_retries


def test_refused_connection_is_retried_until_the_receiver_is_up(sim):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/hook"
    _register(sim, url)
    sim.dispatcher.retry_base = 0.2
    Api(sim).create()
    time.sleep(0.1)
    first = sim.deliveries()[0]["attempts"]
    assert first and first[0]["error"].startswith("connection failed")
    # the receiver appears on the same port; a later retry gets through
    rec = WebhookReceiver()
    rec._server.server_close()
    from http.server import ThreadingHTTPServer

    rec._server = ThreadingHTTPServer(("127.0.0.1", port), rec._server.RequestHandlerClass)
    rec.url = url
    import threading

    rec._thread = threading.Thread(target=rec._server.serve_forever, args=(0.05,), daemon=True)
    with rec:
        got = rec.wait_for(1, timeout=8)
        assert got[0]["headers"]["X-Atlassian-Webhook-Retry"] >= "1"
    assert sim.deliveries()[0]["status"] == "delivered"


def test_timeout_is_retried(sim, receiver):
    receiver.responses = ["hang"]
    receiver.hang_seconds = 1.5  # longer than the fixture's 1 s webhook timeout
    _register(sim, receiver.url)
    Api(sim).create()
    assert sim.wait_idle(timeout=10)
    d = sim.deliveries()[0]
    assert d["attempts"][0]["error"] == "timeout"
    assert d["status"] == "delivered"


def test_delivery_log_over_http(sim, receiver):
    _register(sim, receiver.url, secret="never-shown")
    Api(sim).create()
    receiver.wait_for(1)
    sim.wait_idle()
    log = requests.get(sim.base_url + "/_sim/deliveries").json()
    assert log["count"] == 1
    d = log["deliveries"][0]
    assert d["event"] == "jira:issue_created"
    assert d["url"] == receiver.url
    assert d["webhook"] and d["identifier"] and d["created"]
    assert d["attempts"][0]["status"] == 200 and d["attempts"][0]["at"]
    assert d["body"]["issue"]["key"] == "ENG-1"
    assert "never-shown" not in str(log)
    assert requests.get(sim.base_url + f"/_sim/deliveries?since={d['id']}").json()["count"] == 0


def test_comment_add_fires_comment_created_and_issue_commented(sim, receiver):
    _register(
        sim,
        receiver.url,
        events=["comment_created", "jira:issue_updated"],
    )
    api = Api(sim)
    key = api.create()
    api.ok(api.post(f"/issue/{key}/comment", {"body": "hello"}), 201)
    created = receiver.wait_for(1, webhookEvent="comment_created")[0]["json"]
    updated = receiver.wait_for(1, issue_event_type_name="issue_commented")[0]["json"]
    assert created["comment"]["body"] == "hello"
    assert updated["comment"]["body"] == "hello"
    assert ("issue" in created) == (sim.flavor == "cloud")


def test_cloud_webhook_bodies_carry_wiki_text_not_adf(cloud, receiver):
    _register(cloud, receiver.url)
    api = Api(cloud, version="3")
    doc = cloud.adf("Hello *world*")
    key = api.create(description=doc)
    api.ok(api.post(f"/issue/{key}/comment", {"body": cloud.adf("a _comment_")}), 201)
    created = receiver.wait_for(1, webhookEvent="jira:issue_created")[0]["json"]
    assert created["issue"]["fields"]["description"] == "Hello *world*"
    comment = receiver.wait_for(1, webhookEvent="comment_created")[0]["json"]
    assert comment["comment"]["body"] == "a _comment_"


def test_cloud_issue_delete_cascades_comment_deleted_on_secondary_flow(cloud, receiver):
    api = Api(cloud)
    key = api.create()
    api.ok(api.post(f"/issue/{key}/comment", {"body": "bye"}), 201)
    _register(cloud, receiver.url, events=["jira:issue_deleted", "comment_deleted"])
    api.ok(api.delete(f"/issue/{key}"), 204)
    deleted = receiver.wait_for(1, webhookEvent="jira:issue_deleted")[0]
    cascade = receiver.wait_for(1, webhookEvent="comment_deleted")[0]
    assert deleted["headers"]["X-Atlassian-Webhook-Flow"] == "Primary"
    assert cascade["headers"]["X-Atlassian-Webhook-Flow"] == "Secondary"
