"""Issue links in the simulator, as Jira has them: `/issueLink`, `/issueLinkType`, the
`issuelinks` field, `Link` changelog items and the `issuelink_*` webhook events."""

from __future__ import annotations

import requests

from .helpers import Api

LINK_EVENTS = ["issuelink_created", "issuelink_deleted", "jira:issue_updated"]


def _register(sim, url, jql="project = ENG"):
    payload = {
        "name": "links",
        "url": url,
        "events": LINK_EVENTS,
        "filters": {"issue-related-events-section": jql},
    }
    r = requests.post(f"{sim.base_url}/rest/webhooks/1.0/webhook", json=payload, auth=sim.auth)
    assert r.status_code == 201, r.text


def _link(api, a, b, name="Blocks"):
    body = {"type": {"name": name}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}}
    r = api.post("/issueLink", body)
    assert r.status_code == 201, r.text
    assert r.content == b""  # Jira answers without a body: no id
    return r


def test_link_types_are_jiras_defaults(sim):
    api = Api(sim)
    types = api.ok(api.get("/issueLinkType"))["issueLinkTypes"]
    by_name = {t["name"]: (t["inward"], t["outward"]) for t in types}
    assert by_name == {
        "Blocks": ("is blocked by", "blocks"),
        "Cloners": ("is cloned by", "clones"),
        "Duplicate": ("is duplicated by", "duplicates"),
        "Relates": ("relates to", "relates to"),
    }


def test_a_link_shows_on_both_issues_with_the_other_end(sim):
    api = Api(sim)
    a, b = api.create(summary="A"), api.create(summary="B")
    _link(api, a, b)
    on_a = api.ok(api.get(f"/issue/{a}"))["fields"]["issuelinks"]
    on_b = api.ok(api.get(f"/issue/{b}"))["fields"]["issuelinks"]
    assert len(on_a) == len(on_b) == 1
    assert on_a[0]["id"] == on_b[0]["id"]
    assert on_a[0]["type"]["name"] == "Blocks"
    assert on_a[0]["outwardIssue"]["key"] == b and "inwardIssue" not in on_a[0]
    assert on_b[0]["inwardIssue"]["key"] == a and "outwardIssue" not in on_b[0]
    assert set(on_a[0]["outwardIssue"]["fields"]) == {"summary", "status", "priority", "issuetype"}
    got = api.ok(api.get(f"/issueLink/{on_a[0]['id']}"))
    assert (got["inwardIssue"]["key"], got["outwardIssue"]["key"]) == (a, b)


def test_delete_removes_the_link_from_both_issues(sim):
    api = Api(sim)
    a, b = api.create(), api.create()
    _link(api, a, b, "Relates")
    lid = api.ok(api.get(f"/issue/{a}"))["fields"]["issuelinks"][0]["id"]
    assert api.delete(f"/issueLink/{lid}").status_code == 204
    assert api.ok(api.get(f"/issue/{a}"))["fields"]["issuelinks"] == []
    assert api.ok(api.get(f"/issue/{b}"))["fields"]["issuelinks"] == []
    assert api.get(f"/issueLink/{lid}").status_code == 404
    assert api.delete(f"/issueLink/{lid}").status_code == 404


def test_bad_links_are_refused_with_4xx(sim):
    api = Api(sim)
    a = api.create()
    unknown_type = {"type": {"name": "Nope"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": a}}
    assert api.post("/issueLink", unknown_type).status_code == 404
    missing = {
        "type": {"name": "Blocks"},
        "inwardIssue": {"key": a},
        "outwardIssue": {"key": "ENG-999"},
    }
    assert api.post("/issueLink", missing).status_code == 404
    to_itself = {"type": {"name": "Blocks"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": a}}
    assert api.post("/issueLink", to_itself).status_code == 400
    assert api.post("/issueLink", ["not", "an", "object"]).status_code == 400


def test_link_changelog_items_on_both_issues(sim):
    api = Api(sim)
    a, b = api.create(), api.create()
    _link(api, a, b)
    items_a = api.ok(api.get(f"/issue/{a}/changelog"))["values"][-1]["items"]
    items_b = api.ok(api.get(f"/issue/{b}/changelog"))["values"][-1]["items"]
    assert (items_a[0]["field"], items_a[0]["toString"]) == ("Link", f"This issue blocks {b}")
    assert (items_b[0]["field"], items_b[0]["toString"]) == (
        "Link",
        f"This issue is blocked by {a}",
    )


def test_link_events_come_on_both_flavors_and_issue_events_only_on_cloud(sim, receiver):
    _register(sim, receiver.url)
    api = Api(sim)
    a, b = api.create(), api.create()
    _link(api, a, b, "Duplicate")
    got = receiver.wait_for(1, webhookEvent="issuelink_created")[0]["json"]
    ids = {api.ok(api.get(f"/issue/{k}"))["id"] for k in (a, b)}
    link = got["issueLink"]
    assert {str(link["sourceIssueId"]), str(link["destinationIssueId"])} == ids
    assert link["issueLinkType"]["name"] == "Duplicate"
    assert link["issueLinkType"]["outwardName"] == "duplicates"
    assert link["systemLink"] is False
    lid = api.ok(api.get(f"/issue/{a}"))["fields"]["issuelinks"][0]["id"]
    assert str(link["id"]) == lid
    api.delete(f"/issueLink/{lid}")
    deleted = receiver.wait_for(1, webhookEvent="issuelink_deleted")[0]["json"]
    assert str(deleted["issueLink"]["id"]) == lid
    sim.dispatcher.wait_idle()
    updates = receiver.matching(webhookEvent="jira:issue_updated")
    if sim.flavor == "cloud":  # one per issue, per change, with the Link item
        assert len(updates) == 4
        items = [u["json"]["changelog"]["items"][0] for u in updates]
        assert {i["field"] for i in items} == {"Link"}
    else:  # Data Center records the history and fires no issue event
        assert updates == []


def test_link_events_are_not_filtered_by_the_webhooks_jql(sim, receiver):
    """Jira applies a webhook's JQL to issue and comment events only."""
    _register(sim, receiver.url, jql="project = OPS")
    api = Api(sim)
    a, b = api.create(), api.create()
    _link(api, a, b)
    assert receiver.wait_for(1, webhookEvent="issuelink_created")
    sim.dispatcher.wait_idle()
    assert receiver.matching(webhookEvent="jira:issue_updated") == []


def test_the_issue_events_of_a_removal_show_the_issue_without_the_link(cloud, receiver):
    _register(cloud, receiver.url)
    api = Api(cloud)
    a, b = api.create(), api.create()
    _link(api, a, b)
    lid = api.ok(api.get(f"/issue/{a}"))["fields"]["issuelinks"][0]["id"]
    cloud.dispatcher.wait_idle()
    receiver.clear()
    api.delete(f"/issueLink/{lid}")
    updates = receiver.wait_for(2, webhookEvent="jira:issue_updated")
    assert [u["json"]["issue"]["fields"]["issuelinks"] for u in updates] == [[], []]
    assert {u["json"]["changelog"]["items"][0]["fromString"] for u in updates} == {
        f"This issue blocks {b}",
        f"This issue is blocked by {a}",
    }
