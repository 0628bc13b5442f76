"""Fault injection over /_sim/faults: each mode, and that everything is off by default."""

from __future__ import annotations

import time

import pytest
import requests

from .helpers import Api


def faults(sim, **settings):
    r = requests.post(sim.base_url + "/_sim/faults", json=settings)
    assert r.status_code == 200, r.text
    return r.json()


def test_faults_are_off_by_default_and_clearable(sim):
    state = requests.get(sim.base_url + "/_sim/faults").json()
    assert state["latency_ms"] == 0 and state["error_ratio"] == 0.0
    assert state["rate_limit_count"] == 0 and state["response_lost_count"] == 0
    faults(sim, error_ratio=1.0)
    requests.delete(sim.base_url + "/_sim/faults")
    assert Api(sim).get("/myself").status_code == 200


def test_unknown_fault_setting_is_rejected(sim):
    r = requests.post(sim.base_url + "/_sim/faults", json={"explode": True})
    assert r.status_code == 400
    assert "explode" in r.json()["errorMessages"][0]


def test_latency_is_added_per_call(sim):
    api = Api(sim)
    faults(sim, latency_ms=150)
    start = time.monotonic()
    api.get("/myself")
    assert time.monotonic() - start >= 0.15


def test_rate_limit_answers_429_with_retry_after(sim):
    api = Api(sim)
    faults(sim, rate_limit_count=2, retry_after=3)
    first = api.get("/myself")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "0"
    assert first.json()["errorMessages"]
    assert api.get("/myself").status_code == 429
    assert api.get("/myself").status_code == 200


def test_rate_limit_ratio(sim):
    api = Api(sim)
    faults(sim, rate_limit_ratio=0.5, seed=7)
    codes = [api.get("/myself").status_code for _ in range(40)]
    assert 5 < codes.count(429) < 35
    assert set(codes) == {200, 429}


def test_error_share_answers_500_or_503_and_writes_nothing(sim):
    api = Api(sim)
    faults(sim, error_count=3, error_statuses=[503])
    r = api.post(
        "/issue",
        {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "x"}},
    )
    assert r.status_code == 503
    assert api.get("/issue/ENG-1").status_code == 503
    assert api.get("/issue/ENG-1").status_code == 503
    assert api.get("/issue/ENG-1").status_code == 404  # the failed create wrote nothing
    faults(sim, error_ratio=1.0, error_statuses=[500, 503])
    assert {api.get("/myself").status_code for _ in range(20)} <= {500, 503}


def test_response_lost_after_the_write_happened(sim):
    api = Api(sim)
    faults(sim, response_lost_count=1)
    with pytest.raises(requests.ConnectionError):
        api.post(
            "/issue",
            {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "x"}},
        )
    api.s = requests.Session()
    api.s.auth = sim.auth
    # the issue exists although the client never got an answer; reads are never lost
    assert api.get("/issue/ENG-1").status_code == 200
    assert api.get("/issue/ENG-1").status_code == 200
    calls = requests.get(sim.base_url + "/_sim/calls").json()["calls"]
    assert calls[0]["fault"] == "response_lost" and calls[0]["status"] == 201


def test_faults_can_be_limited_to_paths(sim):
    api = Api(sim)
    faults(sim, error_ratio=1.0, path_pattern=r"/transitions$")
    key = api.create()
    assert api.get(f"/issue/{key}/transitions").status_code in (500, 503)
    assert api.get(f"/issue/{key}").status_code == 200


def test_webhook_drop(sim, receiver):
    sim.register_webhook(receiver.url, events=["jira:issue_created"])
    faults(sim, webhook_drop_count=1)
    api = Api(sim)
    api.create(summary="dropped")
    api.create(summary="kept")
    got = receiver.wait_for(1)
    sim.wait_idle()
    time.sleep(0.1)
    assert [r["json"]["issue"]["fields"]["summary"] for r in receiver.requests] == ["kept"]
    assert [d["status"] for d in sim.deliveries()] == ["dropped", "delivered"]
    assert got


def test_webhook_duplicate_keeps_the_identifier(sim, receiver):
    sim.register_webhook(receiver.url, events=["jira:issue_created"])
    faults(sim, webhook_duplicate_count=1)
    Api(sim).create()
    got = receiver.wait_for(2)
    assert got[0]["raw"] == got[1]["raw"]
    ids = {r["headers"]["X-Atlassian-Webhook-Identifier"] for r in got}
    assert len(ids) == 1


def test_webhook_delay(sim, receiver):
    sim.register_webhook(receiver.url, events=["jira:issue_created"])
    faults(sim, webhook_delay_ms=400)
    start = time.monotonic()
    Api(sim).create()
    got = receiver.wait_for(1)
    assert got[0]["at"] - start >= 0.4


def test_webhook_reorder(sim, receiver):
    sim.register_webhook(receiver.url, events=["jira:issue_created"])
    faults(sim, webhook_reorder_window=3)
    api = Api(sim)
    for n in range(3):
        api.create(summary=f"n{n}")
    got = receiver.wait_for(3)
    assert [r["json"]["issue"]["fields"]["summary"] for r in got] == ["n2", "n1", "n0"]


def test_calls_log_counts_rest_calls(sim):
    api = Api(sim)
    requests.delete(sim.base_url + "/_sim/calls")
    api.create()
    api.get("/issue/ENG-1")
    api.get("/issue/ENG-99")
    log = requests.get(sim.base_url + "/_sim/calls").json()
    assert log["count"] == 3
    assert [(c["method"], c["path"], c["status"]) for c in log["calls"]] == [
        ("POST", "/rest/api/2/issue", 201),
        ("GET", "/rest/api/2/issue/ENG-1", 200),
        ("GET", "/rest/api/2/issue/ENG-99", 404),
    ]
    assert log["by"]["GET /rest/api/2/issue/ENG-1"] == 1
    last = log["calls"][-1]["seq"]
    assert requests.get(sim.base_url + f"/_sim/calls?since={last}").json()["count"] == 0


def test_reset_clears_issues_webhooks_faults_and_logs(sim, receiver):
    sim.register_webhook(receiver.url)
    Api(sim).create()
    faults(sim, latency_ms=10)
    assert requests.post(sim.base_url + "/_sim/reset").status_code == 204
    assert Api(sim).get("/issue/ENG-1").status_code == 404
    assert sim.dispatcher.webhooks == {}
    assert requests.get(sim.base_url + "/_sim/faults").json()["latency_ms"] == 0
    assert Api(sim).create() == "ENG-1"


def test_token_bucket_rate_limit_per_user(sim):
    api = Api(sim)
    faults(sim, rate_limit_rps=5)
    codes = [api.get("/myself").status_code for _ in range(30)]
    assert codes[:10] == [200] * 10  # the burst allowance
    assert 429 in codes


def test_search_lag_hides_fresh_changes_from_search_only(sim):
    api = Api(sim)
    key = api.create()
    faults(sim, search_lag_ms=300)
    if sim.flavor == "cloud":
        search = lambda: api.post("/search/jql", {"jql": "project = ENG", "fields": ["summary"]})  # noqa: E731
    else:
        search = lambda: api.get("/search", params={"jql": "project = ENG"})  # noqa: E731
    assert search().json()["issues"] == []
    assert api.get(f"/issue/{key}").status_code == 200
    time.sleep(0.35)
    assert len(search().json()["issues"]) == 1


def test_webhook_late_delivery_for_a_count_only(sim, receiver):
    sim.register_webhook(receiver.url, events=["jira:issue_created"])
    faults(sim, webhook_late_ms=500, webhook_late_count=1)
    api = Api(sim)
    api.create(summary="late")
    api.create(summary="on time")
    got = receiver.wait_for(2)
    assert [r["json"]["issue"]["fields"]["summary"] for r in got] == ["on time", "late"]


def test_slow_response_after_the_write(sim):
    api = Api(sim)
    faults(sim, slow_response_count=1, slow_response_ms=1500)
    with pytest.raises(requests.Timeout):
        api.post(
            "/issue",
            {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "x"}},
            timeout=0.3,
        )
    assert Api(sim).get("/issue/ENG-1").status_code == 200


def test_per_issue_write_limit(sim):
    api = Api(sim)
    a, b = api.create(), api.create()
    faults(sim, issue_write_rps=1)
    codes = [api.put(f"/issue/{a}", {"fields": {"summary": f"s{n}"}}) for n in range(4)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and limited[0].headers["RateLimit-Reason"] == "jira-per-issue-on-write"
    assert api.put(f"/issue/{b}", {"fields": {"summary": "other issue"}}).status_code == 204
    assert api.get(f"/issue/{a}").status_code == 200  # reads are not limited


def test_reconcile_issues_makes_a_lagging_search_reflect_the_named_issues(cloud):
    api = Api(cloud, version="3")
    first, second = api.create(summary="one"), api.create(summary="two")
    ids = {k: api.ok(api.get(f"/issue/{k}"))["id"] for k in (first, second)}
    faults(cloud, search_lag_ms=60_000)
    body = {"jql": "project = ENG", "fields": ["summary"]}
    assert api.ok(api.post("/search/jql", body))["issues"] == []
    found = api.ok(api.post("/search/jql", {**body, "reconcileIssues": [int(ids[first])]}))
    assert [i["key"] for i in found["issues"]] == [first]  # only the named issue
    by_get = api.ok(
        api.get("/search/jql", params={"jql": "project = ENG", "reconcileIssues": ids[second]})
    )
    assert [i["id"] for i in by_get["issues"]] == [ids[second]]
    # Matched on its current state: a reconciled issue that does not match is not returned.
    miss = {"jql": "project = ENG AND summary ~ nothing", "reconcileIssues": [int(ids[first])]}
    assert api.ok(api.post("/search/jql", miss))["issues"] == []


def test_reconcile_issues_is_bounded_and_takes_only_ids(cloud):
    api = Api(cloud, version="3")
    api.create()
    too_many = {"jql": "project = ENG", "reconcileIssues": list(range(10000, 10051))}
    assert api.post("/search/jql", too_many).status_code == 400
    assert (
        api.post("/search/jql", {"jql": "project = ENG", "reconcileIssues": ["ENG-1"]}).status_code
        == 400
    )
    fifty = {"jql": "project = ENG", "reconcileIssues": list(range(10000, 10050))}
    assert api.post("/search/jql", fifty).status_code == 200
