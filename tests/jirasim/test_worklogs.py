"""Worklogs in the simulator: REST on both flavors, the issue's time fields, the changelog
items and the webhooks Jira fires for each change."""

from __future__ import annotations

import requests

from .helpers import Api

WORKLOG_EVENTS = ["worklog_created", "worklog_updated", "worklog_deleted", "jira:issue_updated"]


def _register(sim, url):
    body = {
        "name": "sync",
        "url": url,
        "events": WORKLOG_EVENTS,
        "filters": {"issue-related-events-section": "project = ENG"},
    }
    r = requests.post(f"{sim.base_url}/rest/webhooks/1.0/webhook", json=body, auth=sim.auth)
    assert r.status_code == 201, r.text


def _comment(sim, text):
    if sim.flavor == "cloud":
        para = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        return {"type": "doc", "version": 1, "content": [para]}
    return text


def _api(sim):
    return Api(sim, "3" if sim.flavor == "cloud" else "2")


def test_a_worklog_is_added_read_edited_and_deleted_over_rest(sim):
    api = _api(sim)
    key = api.create()
    body = {
        "timeSpent": "1h 30m",
        "started": "2026-11-26T10:00:00.000+0000",
        "comment": _comment(sim, "Fixed the build"),
    }
    added = api.ok(api.post(f"/issue/{key}/worklog", body), 201)
    assert added["timeSpentSeconds"] == 5400
    assert added["timeSpent"] == "1h 30m"
    assert added["started"] == "2026-11-26T10:00:00.000+0000"
    assert added["comment"] == body["comment"]
    issue_id = api.ok(api.get(f"/issue/{key}"))["id"]
    assert added["issueId"] == issue_id
    wid = added["id"]

    got = api.ok(api.get(f"/issue/{key}/worklog/{wid}"))
    assert got["timeSpentSeconds"] == 5400
    fields = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert fields["timespent"] == 5400
    assert fields["timetracking"]["timeSpentSeconds"] == 5400
    assert fields["worklog"]["total"] == 1
    assert fields["worklog"]["worklogs"][0]["id"] == wid

    edited = api.ok(api.put(f"/issue/{key}/worklog/{wid}", {"timeSpentSeconds": 7200}))
    assert edited["timeSpent"] == "2h"
    assert edited["comment"] == body["comment"]  # not given: kept
    listed = api.ok(api.get(f"/issue/{key}/worklog"))
    assert [w["timeSpentSeconds"] for w in listed["worklogs"]] == [7200]

    api.ok(api.delete(f"/issue/{key}/worklog/{wid}"), 204)
    assert api.get(f"/issue/{key}/worklog/{wid}").status_code == 404
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["timespent"] is None


def test_bad_worklog_input_is_refused_with_jiras_400(sim):
    api = _api(sim)
    key = api.create()
    started = "2026-11-26T10:00:00.000+0000"
    no_time = api.post(f"/issue/{key}/worklog", {"started": started})
    assert no_time.status_code == 400
    assert "timeLogged" in no_time.json()["errors"]
    bad_time = api.post(f"/issue/{key}/worklog", {"timeSpent": "soon", "started": started})
    assert bad_time.status_code == 400
    bad_start = api.post(f"/issue/{key}/worklog", {"timeSpent": "1h", "started": "yesterday"})
    assert bad_start.status_code == 400
    assert "started" in bad_start.json()["errors"]
    assert api.get(f"/issue/{key}/worklog/99999").status_code == 404


def test_rest_v3_takes_and_gives_adf_and_v2_a_string(cloud):
    v3, v2 = Api(cloud, "3"), Api(cloud, "2")
    key = v3.create()
    refused = v3.post(
        f"/issue/{key}/worklog",
        {"timeSpent": "1h", "started": "2026-11-26T10:00:00.000+0000", "comment": "plain"},
    )
    assert refused.status_code == 400
    added = v3.ok(
        v3.post(
            f"/issue/{key}/worklog",
            {
                "timeSpent": "1h",
                "started": "2026-11-26T10:00:00.000+0000",
                "comment": _comment(cloud, "In ADF"),
            },
        ),
        201,
    )
    as_v2 = v2.ok(v2.get(f"/issue/{key}/worklog/{added['id']}"))
    assert as_v2["comment"] == "In ADF"


def test_remaining_estimate_follows_adjust_estimate(dc):
    api = Api(dc)
    key = api.create()
    started = "2026-11-26T10:00:00.000+0000"
    body = {"timeSpent": "1h", "started": started}
    api.ok(api.post(f"/issue/{key}/worklog?adjustEstimate=new&newEstimate=5h", body), 201)
    fields = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert fields["timeestimate"] == 5 * 3600
    api.ok(api.post(f"/issue/{key}/worklog", body), 201)  # auto: 5h - 1h
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["timeestimate"] == 4 * 3600
    assert api.post(f"/issue/{key}/worklog?adjustEstimate=sometimes", body).status_code == 400


def test_each_worklog_change_fires_its_event_and_an_issue_update_with_changelog(sim, receiver):
    _register(sim, receiver.url)
    api = _api(sim)
    key = api.create()
    issue_id = api.ok(api.get(f"/issue/{key}"))["id"]
    added = api.ok(
        api.post(
            f"/issue/{key}/worklog",
            {"timeSpent": "45m", "started": "2026-11-26T10:00:00.000+0000"},
        ),
        201,
    )
    created = receiver.wait_for(1, webhookEvent="worklog_created")[0]["json"]
    assert set(created) == {"timestamp", "webhookEvent", "worklog"}
    assert created["worklog"]["issueId"] == issue_id
    assert created["worklog"]["id"] == added["id"]
    assert created["worklog"]["timeSpentSeconds"] == 2700
    assert "/rest/api/2/" in created["worklog"]["self"]
    logged = receiver.wait_for(1, issue_event_type_name="issue_worklogged")[0]["json"]
    items = {i["field"]: i for i in logged["changelog"]["items"]}
    assert items["timespent"]["to"] == "2700"
    assert items["WorklogId"]["to"] == added["id"]

    api.ok(api.put(f"/issue/{key}/worklog/{added['id']}", {"timeSpent": "1h"}))
    updated = receiver.wait_for(1, webhookEvent="worklog_updated")[0]["json"]
    assert updated["worklog"]["timeSpentSeconds"] == 3600
    receiver.wait_for(1, issue_event_type_name="issue_worklog_updated")

    api.ok(api.delete(f"/issue/{key}/worklog/{added['id']}"), 204)
    deleted = receiver.wait_for(1, webhookEvent="worklog_deleted")[0]["json"]
    assert deleted["worklog"]["id"] == added["id"]
    gone = receiver.wait_for(1, issue_event_type_name="issue_worklog_deleted")[0]["json"]
    items = {i["field"]: i for i in gone["changelog"]["items"]}
    assert items["WorklogId"]["from"] == added["id"]
    assert items["timespent"]["to"] is None
