"""The workflow options: a multi-step workflow with a transition screen, a condition that
hides a transition, a status no transition reaches, required screen fields, and a resolution
recorded as its own change."""

from __future__ import annotations

import json

import pytest

from .helpers import Api, full_fields

MULTISTEP_IDS = {
    "cloud": {"Start Progress": "111", "Submit for Review": "131", "Approve": "151"},
    "datacenter": {"Start Progress": "4", "Submit for Review": "711", "Resolve Issue": "5"},
}


@pytest.fixture
def multistep(sim):
    sim.set_options(workflow="multistep")
    try:
        yield sim
    finally:
        sim.options.restore()


def targets(api: Api, key: str, **params) -> dict[str, dict]:
    got = api.ok(api.get(f"/issue/{key}/transitions", params=params))["transitions"]
    return {t["to"]["name"]: t for t in got}


def move(api: Api, key: str, status: str, fields: dict | None = None):
    tid = targets(api, key)[status]["id"]
    body = {"transition": {"id": tid}, **({"fields": fields} if fields else {})}
    return api.post(f"/issue/{key}/transitions", body)


def test_multistep_goes_forward_one_step_at_a_time_with_ids_per_flavor(multistep):
    api = Api(multistep)
    key = api.create()
    assert set(targets(api, key)) == {"In Progress"}
    ids = {t["name"]: t["id"] for t in targets(api, key).values()}
    assert ids["Start Progress"] == MULTISTEP_IDS[multistep.flavor]["Start Progress"]
    api.ok(move(api, key, "In Progress"), 204)
    assert set(targets(api, key)) == {"To Do", "In Review"}
    api.ok(move(api, key, "In Review"), 204)
    assert set(targets(api, key)) == {"In Progress", "Done"}


def test_the_transition_into_done_requires_the_resolution_on_its_screen(multistep):
    api = Api(multistep)
    key = api.create()
    api.ok(move(api, key, "In Progress"), 204)
    api.ok(move(api, key, "In Review"), 204)
    done = targets(api, key, expand="transitions.fields")["Done"]
    assert done["hasScreen"] is True
    field = done["fields"]["resolution"]
    assert field["required"] is True
    assert {v["name"] for v in field["allowedValues"]} == {"Done", "Won't Do", "Duplicate"}

    refused = move(api, key, "Done")
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"resolution"}
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["status"]["name"] == "In Review"

    api.ok(move(api, key, "Done", {"resolution": {"name": "Won't Do"}}), 204)
    got = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert got["status"]["name"] == "Done" and got["resolution"]["name"] == "Won't Do"
    assert set(targets(api, key)) == {"To Do"}  # Reopen


def test_a_condition_hides_a_transition_and_a_post_naming_it_is_refused(multistep):
    api = Api(multistep)
    key = api.create()
    hidden = targets(api, key, includeUnavailableTransitions="true")["Done"]
    assert hidden["isAvailable"] is False and hidden["isConditional"] is True
    assert "Done" not in targets(api, key)
    body = {"transition": {"id": hidden["id"]}, "fields": {"resolution": {"name": "Done"}}}
    refused = api.post(f"/issue/{key}/transitions", body)
    assert refused.status_code == 400 and refused.json()["errorMessages"]


@pytest.mark.parametrize("workflow", ["simple", "multistep"])
def test_blocked_is_a_status_of_the_site_that_no_transition_reaches(sim, workflow):
    sim.set_options(workflow=workflow)
    try:
        api = Api(sim)
        assert "Blocked" in {s["name"] for s in api.ok(api.get("/status"))}
        key = api.create()
        seen, todo = set(), ["To Do"]
        # Walk every status reachable from To Do (moving the issue there and back).
        while todo:
            status = todo.pop()
            if status in seen:
                continue
            seen.add(status)
            issue = sim.store.get_issue(key)
            issue["status"] = sim.store.status_id(status)
            todo += list(targets(api, key, includeUnavailableTransitions="true"))
        assert "Blocked" not in seen and {"To Do", "In Progress", "Done"} <= seen
    finally:
        sim.options.restore()


def test_required_fields_on_the_done_screen_are_refused_when_missing(sim):
    sim.set_options(transition_required_fields=["customfield_10010"])
    try:
        api = Api(sim)
        key = api.create()
        done = targets(api, key, expand="transitions.fields")["Done"]
        assert done["fields"]["customfield_10010"]["required"] is True
        refused = move(api, key, "Done")
        assert refused.status_code == 400
        assert refused.json()["errors"] == {"customfield_10010": "External Reference is required."}
        api.ok(move(api, key, "Done", {"customfield_10010": "EXT-9"}), 204)
        assert api.ok(api.get(f"/issue/{key}"))["fields"]["customfield_10010"] == "EXT-9"
    finally:
        sim.options.restore()


def test_a_resolution_can_be_recorded_as_its_own_change(sim, receiver):
    sim.register_webhook(receiver.url, ["jira:issue_updated"], "project = ENG")
    sim.set_options(resolution_separate_changelog=True)
    try:
        api = Api(sim)
        key = api.create()
        api.ok(move(api, key, "Done"), 204)
        sim.wait_idle()
        named = [
            [i["field"] for i in hook["json"]["changelog"]["items"]] for hook in receiver.requests
        ]
        assert named == [["status"], ["resolution"]]
        last = receiver.requests[-1]["json"]
        assert last["issue"]["fields"]["status"]["name"] == "Done"
        hist = api.ok(api.get(f"/issue/{key}/changelog"))["values"]
        assert [[i["field"] for i in h["items"]] for h in hist][-2:] == [["status"], ["resolution"]]
    finally:
        sim.options.restore()


def test_an_unknown_workflow_is_refused(sim):
    with pytest.raises(ValueError):
        sim.set_options(workflow="kanban")
    assert sim.options.workflow == "simple"


@pytest.mark.parametrize(
    "fixture_name, before, action",
    [
        ("webhook-issue-updated-resolved-one-changelog.json", "In Progress", "Done"),
        ("webhook-issue-updated-reopened-one-changelog.json", "Done", "To Do"),
    ],
)
def test_the_resolution_only_event_has_the_shape_of_the_real_one(
    cloud, receiver, fixture_name, before, action
):
    """Real Cloud payloads whose changelog names only the resolution, against the simulator's
    with `resolution_separate_changelog` (the structural comparison of
    test_webhook_structure)."""
    from .test_webhook_structure import EXCLUDED, FIXTURES, compare

    real = json.loads((FIXTURES / "mattermost" / fixture_name).read_text())
    cloud.set_options(resolution_separate_changelog=True)
    try:
        api = Api(cloud)
        key = api.create(**full_fields(api))
        api.transition_to(key, before)
        cloud.wait_idle()
        cloud.register_webhook(receiver.url, ["jira:issue_updated"], "project = ENG")
        api.transition_to(key, action)
        cloud.wait_idle()
        got = receiver.requests[-1]["json"]
    finally:
        cloud.options.restore()
    keys = ("field", "fieldtype", "fieldId", "from", "fromString", "to", "toString")
    assert [tuple(i.get(k) for k in keys) for i in got["changelog"]["items"]] == [
        tuple(i.get(k) for k in keys) for i in real["changelog"]["items"]
    ]
    assert got["issue_event_type_name"] == real["issue_event_type_name"]
    problems: list[str] = []
    compare(real, got, "", {**EXCLUDED["common"], **EXCLUDED["cloud"]}, problems)
    assert not problems, "\n".join(problems)
