"""Sub-tasks, parents and epics in the simulator, as Jira has them.

Hierarchy levels: epic 1, standard issue 0, sub-task -1. Cloud sets and changes any parent
by `fields.parent`; Data Center sets a sub-task's `parent` on create only, and a standard
issue's epic by the Epic Link field (Jira Software), whose changelog item is "Epic Link".
"""

from __future__ import annotations

from jirasim.model import DC_EPIC_LINK, DC_EPIC_NAME

from .helpers import Api


def _epic(api: Api, flavor: str, summary: str = "An epic") -> str:
    extra = {DC_EPIC_NAME: summary} if flavor == "datacenter" else {}
    return api.create(issuetype={"name": "Epic"}, summary=summary, **extra)


def _epic_of(api: Api, flavor: str, key: str) -> str | None:
    f = api.ok(api.get(f"/issue/{key}"))["fields"]
    if flavor == "cloud":
        return (f.get("parent") or {}).get("key")
    assert "parent" not in f  # a standard issue on Data Center has no `parent`
    return f[DC_EPIC_LINK]


def test_a_sub_task_is_listed_under_its_parent_and_names_it(sim):
    api = Api(sim)
    parent = api.create()
    child = api.create(issuetype={"name": "Sub-task"}, parent={"key": parent}, summary="Sub")
    got = api.ok(api.get(f"/issue/{child}"))["fields"]
    assert got["parent"]["key"] == parent
    assert got["issuetype"]["subtask"] is True
    subs = api.ok(api.get(f"/issue/{parent}"))["fields"]["subtasks"]
    assert [s["key"] for s in subs] == [child]


def test_a_sub_task_needs_a_standard_parent(sim, flavor):
    api = Api(sim)
    body = {"project": {"key": "ENG"}, "issuetype": {"name": "Sub-task"}, "summary": "x"}
    assert "parent" in api.post("/issue", {"fields": body}).json()["errors"]
    epic = _epic(api, flavor)
    refused = api.post("/issue", {"fields": {**body, "parent": {"key": epic}}})
    assert refused.status_code == 400 and "parent" in refused.json()["errors"]


def test_data_center_needs_an_epic_name_to_create_an_epic(dc):
    api = Api(dc)
    body = {"project": {"key": "ENG"}, "issuetype": {"name": "Epic"}, "summary": "E"}
    refused = api.post("/issue", {"fields": body})
    assert refused.status_code == 400
    assert refused.json()["errors"] == {DC_EPIC_NAME: "Epic Name is required."}
    key = api.ok(api.post("/issue", {"fields": {**body, DC_EPIC_NAME: "E"}}), 201)["key"]
    assert api.ok(api.get(f"/issue/{key}"))["fields"][DC_EPIC_NAME] == "E"


def test_cloud_has_no_epic_link_field(cloud):
    api = Api(cloud)
    key = api.create()
    assert DC_EPIC_LINK not in api.ok(api.get(f"/issue/{key}"))["fields"]
    refused = api.put(f"/issue/{key}", {"fields": {DC_EPIC_LINK: "ENG-1"}})
    assert refused.status_code == 400 and DC_EPIC_LINK in refused.json()["errors"]
    names = {f["name"] for f in api.ok(api.get("/field"))}
    assert "Epic Link" not in names


def test_a_standard_issue_goes_under_an_epic_by_parent_on_cloud_and_epic_link_on_dc(sim, flavor):
    api = Api(sim)
    epic, other = _epic(api, flavor), _epic(api, flavor, "Another")
    if flavor == "cloud":
        story = api.create(parent={"key": epic})
        move = {"parent": {"key": other}}
    else:
        story = api.create(**{DC_EPIC_LINK: epic})
        move = {DC_EPIC_LINK: other}
    assert _epic_of(api, flavor, story) == epic
    api.ok(api.put(f"/issue/{story}", {"fields": move}), 204)
    assert _epic_of(api, flavor, story) == other
    # the epic's issues are not its sub-tasks
    assert api.ok(api.get(f"/issue/{other}"))["fields"]["subtasks"] == []


def test_data_center_refuses_a_parent_on_a_standard_issue_and_an_epic_link_on_a_sub_task(dc):
    api = Api(dc)
    epic, story = _epic(api, "datacenter"), api.create()
    refused = api.put(f"/issue/{story}", {"fields": {DC_EPIC_LINK: story}})
    assert refused.status_code == 400 and DC_EPIC_LINK in refused.json()["errors"]
    sub = api.create(issuetype={"name": "Sub-task"}, parent={"key": story})
    refused = api.put(f"/issue/{sub}", {"fields": {DC_EPIC_LINK: epic}})
    assert refused.status_code == 400 and DC_EPIC_LINK in refused.json()["errors"]


def test_changing_a_sub_tasks_parent_by_edit_works_on_cloud_only(sim, flavor):
    api = Api(sim)
    first, second = api.create(), api.create()
    sub = api.create(issuetype={"name": "Sub-task"}, parent={"key": first})
    answer = api.put(f"/issue/{sub}", {"fields": {"parent": {"key": second}}})
    now = api.ok(api.get(f"/issue/{sub}"))["fields"]["parent"]["key"]
    if flavor == "cloud":
        assert answer.status_code == 204 and now == second
    else:
        assert answer.status_code == 400 and "parent" in answer.json()["errors"]
        assert now == first


def test_parent_changes_are_in_the_webhook_changelog(sim, flavor, receiver):
    api = Api(sim)
    sim.register_webhook(receiver.url, jql="project = ENG")
    epic = _epic(api, flavor)
    story = api.create()
    field = "parent" if flavor == "cloud" else DC_EPIC_LINK
    api.ok(
        api.put(
            f"/issue/{story}", {"fields": {field: {"key": epic} if field == "parent" else epic}}
        ),
        204,
    )
    got = receiver.wait_for(1, webhookEvent="jira:issue_updated")[0]["json"]
    items = got["changelog"]["items"]
    epic_id = api.ok(api.get(f"/issue/{epic}"))["id"]
    if flavor == "cloud":
        assert [(i["field"], i["to"], i["toString"]) for i in items] == [
            ("IssueParentAssociation", epic_id, epic)
        ]
        assert got["issue"]["fields"]["parent"]["key"] == epic
    else:
        assert [(i["field"], i["fieldtype"], i["to"], i["toString"]) for i in items] == [
            ("Epic Link", "custom", epic_id, epic)
        ]
        assert got["issue"]["fields"][DC_EPIC_LINK] == epic


def test_data_center_lists_its_agile_fields(dc):
    api = Api(dc)
    found = {f["id"]: f for f in api.ok(api.get("/field"))}
    assert found[DC_EPIC_LINK]["name"] == "Epic Link"
    assert found[DC_EPIC_LINK]["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-epic-link"
    assert found[DC_EPIC_NAME]["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-epic-label"


def test_cloud_removes_an_epic_with_an_empty_parent_but_a_sub_task_keeps_its_own(cloud):
    api = Api(cloud)
    epic = _epic(api, "cloud")
    story = api.create(parent={"key": epic})
    api.ok(api.put(f"/issue/{story}", {"fields": {"parent": {}}}), 204)
    assert "parent" not in api.ok(api.get(f"/issue/{story}"))["fields"]
    sub = api.create(issuetype={"name": "Sub-task"}, parent={"key": story})
    refused = api.put(f"/issue/{sub}", {"fields": {"parent": {}}})
    assert refused.status_code == 400 and "parent" in refused.json()["errors"]


def test_a_sub_task_is_in_its_parents_project(sim):
    api = Api(sim)
    parent = api.create()
    body = {
        "project": {"key": "OPS"},
        "issuetype": {"name": "Sub-task"},
        "summary": "Elsewhere",
        "parent": {"key": parent},
    }
    refused = api.post("/issue", {"fields": body})
    assert refused.status_code == 400 and "parent" in refused.json()["errors"]
