"""The realism options of the `real` slice: edit screens (editmeta), issue moves, Cloud's
kept ADF, Data Center's CRLF line ends and comment pagination.

Each test that sets options on a shared simulator restores them (the `options` fixture).
"""

from __future__ import annotations

import pytest
import requests

from .helpers import Api

CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


@pytest.fixture
def options(sim):
    """Set options on `sim` for one test; the friendly defaults come back afterwards."""
    try:
        yield sim.set_options
    finally:
        sim.options.restore()


# --- editmeta / edit screens ------------------------------------------------------------------


def test_editmeta_lists_the_fields_of_the_edit_screen(sim):
    api = Api(sim)
    key = api.create()
    meta = api.ok(api.get(f"/issue/{key}/editmeta"))["fields"]
    assert {"summary", "description", "priority", "labels", "customfield_10012"} <= set(meta)
    assert "status" not in meta and "created" not in meta
    assert meta["summary"]["required"] is True
    assert meta["labels"]["operations"] == ["add", "set", "remove"]
    assert meta["labels"]["schema"] == {"type": "array", "items": "string", "system": "labels"}
    names = {v["name"] for v in meta["priority"]["allowedValues"]}
    assert {"Highest", "Lowest"} <= names
    assert {v["value"] for v in meta["customfield_10012"]["allowedValues"]} == {
        "Minor",
        "Major",
        "Critical",
    }


def test_a_field_off_the_edit_screen_is_refused_with_jiras_400(sim, options):
    api = Api(sim)
    key = api.create(labels=["a"])
    options(edit_screen_hidden_fields=["labels"])
    meta = api.ok(api.get(f"/issue/{key}/editmeta"))["fields"]
    assert "labels" not in meta and "summary" in meta
    resp = api.put(f"/issue/{key}", {"fields": {"labels": ["b"], "summary": "S2"}})
    assert resp.status_code == 400
    assert resp.json()["errors"] == {"labels": CANNOT_SET.format("labels")}
    fields = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert fields["labels"] == ["a"] and fields["summary"] == "A summary"  # nothing written
    resp = api.put(f"/issue/{key}", {"update": {"labels": [{"add": "c"}]}})
    assert resp.status_code == 400 and "labels" in resp.json()["errors"]
    api.ok(api.put(f"/issue/{key}", {"fields": {"summary": "S3"}}), 204)


def test_edit_screens_differ_per_project_and_issue_type(sim, options):
    api = Api(sim)
    options(edit_screen_hidden_fields=["ENG/Bug/duedate", "OPS/labels"])
    bug = api.create(issuetype={"name": "Bug"})
    task = api.create()
    ops = api.ok(
        api.post(
            "/issue",
            {
                "fields": {
                    "project": {"key": "OPS"},
                    "issuetype": {"name": "Task"},
                    "summary": "ops",
                }
            },
        ),
        201,
    )["key"]
    assert "duedate" not in api.ok(api.get(f"/issue/{bug}/editmeta"))["fields"]
    assert "duedate" in api.ok(api.get(f"/issue/{task}/editmeta"))["fields"]
    assert "labels" not in api.ok(api.get(f"/issue/{ops}/editmeta"))["fields"]
    assert api.put(f"/issue/{bug}", {"fields": {"duedate": "2030-01-02"}}).status_code == 400
    api.ok(api.put(f"/issue/{task}", {"fields": {"duedate": "2030-01-02"}}), 204)
    api.ok(api.put(f"/issue/{task}", {"fields": {"labels": ["x"]}}), 204)
    assert api.put(f"/issue/{ops}", {"fields": {"labels": ["x"]}}).status_code == 400


def test_edit_screen_option_over_the_control_endpoint(sim):
    base = sim.base_url
    try:
        got = requests.post(
            f"{base}/_sim/options", json={"edit_screen_hidden_fields": ["labels"]}, timeout=5
        ).json()
        assert got["edit_screen_hidden_fields"] == ["labels"]
        api = Api(sim)
        key = api.create()
        assert api.put(f"/issue/{key}", {"fields": {"labels": ["x"]}}).status_code == 400
    finally:
        requests.delete(f"{base}/_sim/options", timeout=5)
    assert Api(sim).put(f"/issue/{key}", {"fields": {"labels": ["x"]}}).status_code == 204


# --- moves ----------------------------------------------------------------------------------


def test_a_moved_issue_keeps_its_id_and_its_old_key_resolves(sim, receiver):
    api = Api(sim)
    key = api.create(components=[{"name": "Backend"}])
    before = api.ok(api.get(f"/issue/{key}"))
    sim.wait_idle()
    sim.register_webhook(receiver.url)
    moved = requests.post(
        f"{sim.base_url}/_sim/move", json={"issue": key, "project": "OPS"}, timeout=5
    ).json()
    assert moved["id"] == before["id"] and moved["key"].startswith("OPS-")
    again = api.ok(api.get(f"/issue/{key}"))  # the old key still resolves
    assert again["id"] == before["id"] and again["key"] == moved["key"]
    assert again["fields"]["project"]["key"] == "OPS"
    assert [c["name"] for c in again["fields"]["components"]] == ["Backend"]  # same name
    hook = receiver.wait_for(1, webhookEvent="jira:issue_updated")[0]["json"]
    assert hook["issue_event_type_name"] == "issue_moved"
    assert hook["issue"]["id"] == before["id"] and hook["issue"]["key"] == moved["key"]
    items = {i["field"]: i for i in hook["changelog"]["items"]}
    assert items["Key"]["fromString"] == key and items["Key"]["toString"] == moved["key"]
    assert items["project"]["fromString"] == "Engineering"
    assert items["project"]["toString"] == "Operations"
    if sim.flavor == "cloud":
        assert items["Key"]["fieldId"] == "issuekey"
    else:
        assert "fieldId" not in items["Key"]
    history = api.ok(api.get(f"/issue/{moved['key']}/changelog"))["values"][-1]
    assert {i["field"] for i in history["items"]} >= {"Key", "project"}


def test_a_move_to_an_unknown_or_the_same_project_is_refused(sim):
    key = Api(sim).create()
    for project in ("NOPE", "ENG"):
        resp = requests.post(
            f"{sim.base_url}/_sim/move", json={"issue": key, "project": project}, timeout=5
        )
        assert resp.status_code == 400


def test_old_keys_survive_a_save_and_load(sim, tmp_path):
    key = Api(sim).create()
    new_key = sim.move_issue(key, "OPS")
    path = str(tmp_path / "state.json")
    sim.save_state(path)
    sim.reset()
    sim.load_state(path)
    assert Api(sim).ok(Api(sim).get(f"/issue/{key}"))["key"] == new_key


# --- store_adf ------------------------------------------------------------------------------

RICH = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "paragraph",
            "attrs": {"localId": "a1b2c3"},
            "content": [
                {"type": "text", "text": "Hello "},
                {"type": "mention", "attrs": {"id": "712020:abc", "text": "@Alice"}},
                {"type": "text", "text": " "},
                {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
            ],
        },
        {
            "type": "panel",
            "attrs": {"panelType": "info"},
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Note"}]}],
        },
    ],
}


def test_cloud_keeps_the_adf_it_was_given(cloud):
    v3, v2 = Api(cloud, "3"), Api(cloud, "2")
    try:
        cloud.set_options(store_adf=True)
        key = v3.create(description=RICH, customfield_10013=RICH)
        fields = v3.ok(v3.get(f"/issue/{key}"))["fields"]
        assert fields["description"] == RICH and fields["customfield_10013"] == RICH
        wiki = v2.ok(v2.get(f"/issue/{key}"))["fields"]["description"]
        assert wiki.startswith("Hello [~accountid:712020:abc] *bold*")
        assert "{panel:bgColor=#deebff}\nNote\n{panel}" in wiki
        comment = v3.ok(v3.post(f"/issue/{key}/comment", {"body": RICH}), 201)
        assert comment["body"] == RICH
        listed = v3.ok(v3.get(f"/issue/{key}/comment"))["comments"]
        assert listed[0]["body"] == RICH
        v2.ok(v2.put(f"/issue/{key}", {"fields": {"description": "plain *wiki*"}}), 204)
        rebuilt = v3.ok(v3.get(f"/issue/{key}"))["fields"]["description"]
        assert rebuilt["type"] == "doc" and "localId" not in str(rebuilt)
    finally:
        cloud.options.restore()


def test_without_store_adf_cloud_rebuilds_adf_from_wiki(cloud):
    v3 = Api(cloud, "3")
    key = v3.create(description=RICH)
    got = v3.ok(v3.get(f"/issue/{key}"))["fields"]["description"]
    assert got != RICH and "localId" not in str(got)


# --- crlf -----------------------------------------------------------------------------------


def test_data_center_text_comes_back_with_crlf(dc, receiver):
    api = Api(dc)
    try:
        dc.set_options(crlf=True)
        key = api.create(description="line one\nline two", customfield_10013="a\nb")
        fields = api.ok(api.get(f"/issue/{key}"))["fields"]
        assert fields["description"] == "line one\r\nline two"
        assert fields["customfield_10013"] == "a\r\nb"
        assert fields["summary"] == "A summary"
        dc.register_webhook(receiver.url)
        api.ok(api.post(f"/issue/{key}/comment", {"body": "c1\nc2"}), 201)
        hook = receiver.wait_for(1, webhookEvent="comment_created")[0]["json"]
        assert hook["comment"]["body"] == "c1\r\nc2"
        api.ok(api.put(f"/issue/{key}", {"fields": {"description": "x\r\ny\nz"}}), 204)
        assert api.ok(api.get(f"/issue/{key}"))["fields"]["description"] == "x\r\ny\r\nz"
    finally:
        dc.options.restore()
    api.ok(api.put(f"/issue/{key}", {"fields": {"description": "p\nq"}}), 204)
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["description"] == "p\nq"


# --- comment pages --------------------------------------------------------------------------


def test_comments_are_paged_at_the_site_page_size(sim, options):
    api = Api(sim)
    key = api.create()
    for n in range(7):
        api.ok(api.post(f"/issue/{key}/comment", {"body": f"comment {n}"}), 201)
    options(comment_page_size=3)
    page = api.ok(api.get(f"/issue/{key}/comment", params={"maxResults": 100}))
    assert page["maxResults"] == 3 and page["total"] == 7 and len(page["comments"]) == 3
    last = api.ok(api.get(f"/issue/{key}/comment", params={"startAt": 6}))
    assert [c["body"] for c in last["comments"]] == ["comment 6"]
    embedded = api.ok(api.get(f"/issue/{key}"))["fields"]["comment"]
    assert embedded["total"] == 7 and len(embedded["comments"]) == 3
    assert embedded["maxResults"] == 3
