"""Versions by name (issue 15, item 4): a fix or affects version the other site's project
lacks is created there when the organization allows it (`create_missing_versions`), then
written; otherwise it is left out and recorded where an admin sees it. Cloud local site,
Data Center partner, each numbering its versions itself (`NamesWorld`)."""

from __future__ import annotations

import pytest
import requests

from sync.models import IssueLink, SyncEvent

from .names_world import NamesWorld
from .test_loop_prevention import OTHER, SYNC, WAYS

pytestmark = pytest.mark.django_db

PROJECT = {"local": "LOC", "partner": "REM"}


def add_version(w: NamesWorld, side: str, name: str) -> None:
    """A version only this site's project has (its Jira admin made it)."""
    store = w.sims[side].store
    with store.lock:
        store.projects[PROJECT[side]]["versions"].append(
            {
                "id": store._next("version"),
                "name": name,
                "description": "",
                "archived": False,
                "released": True,
                "releaseDate": "2026-01-31",
            }
        )


def calls(w: NamesWorld, side: str, method: str, path_end: str) -> int:
    log = requests.get(f"{w.sims[side].base_url}/_sim/calls", timeout=5).json()["calls"]
    return sum(
        1
        for c in log
        if c["method"] == method and c["path"].endswith(path_end) and c["user"] == SYNC[side][0]
    )


@pytest.fixture
def creating_world(settings):
    w = NamesWorld(settings, create_missing_versions=True)
    w.link_pair()
    yield w
    w.close()


def _project(w: NamesWorld, side: str) -> dict:
    return w.api(side, "GET", f"/project/{PROJECT[side]}")


NamesWorld.project = _project


@pytest.mark.parametrize("field", ["fixVersions", "versions"])
@pytest.mark.parametrize("way", WAYS)
def test_a_version_the_other_project_lacks_is_created_there_and_written(creating_world, way, field):
    w = creating_world
    edited, other = WAYS[way], OTHER[WAYS[way]]
    add_version(w, edited, "3.0")
    w.edit(edited, **{field: [{"name": "3.0"}, {"name": "1.0"}]})
    assert w.feed_all(edited) == ["done"]

    assert w.names(other, field) == ["1.0", "3.0"]
    made = [v for v in _project(w, other)["versions"] if v["name"] == "3.0"]
    assert len(made) == 1
    assert made[0]["released"] is False  # the name only: release state is not synced
    assert "releaseDate" not in made[0]
    assert calls(w, other, "POST", "/version") == 1
    event = SyncEvent.objects.latest("pk")
    assert "created the missing version(s) 3.0" in event.message
    assert event.result != "error"
    assert IssueLink.objects.get().last_error == ""
    w.reset_calls()

    assert w.feed_all(other) == ["echo"]
    assert w.total_writes() == 0


def test_a_missing_version_is_left_out_and_recorded_when_creating_is_off(names_world):
    w = names_world
    add_version(w, "local", "3.0")
    w.edit("local", summary="B", fixVersions=[{"name": "3.0"}, {"name": "2.0"}])
    assert w.feed_all("local") == ["done"]

    assert w.fields("partner")["summary"] == "B"
    assert w.names("partner", "fixVersions") == ["2.0"]
    assert "3.0" not in [v["name"] for v in _project(w, "partner")["versions"]]
    assert calls(w, "partner", "POST", "/version") == 0
    message = SyncEvent.objects.filter(direction="push").latest("pk").message
    assert "3.0" in message and "creating missing versions is off" in message
    assert "3.0" in IssueLink.objects.get().last_error  # shown on the issue link's admin page
    w.reset_calls()
    assert set(w.feed_all("partner")) == {"echo"}
    w.edit("local", summary="C")  # the left-out name is not tried again
    assert w.feed_all("local") == ["done"]
    assert w.total_writes() == 1


def test_a_new_issue_with_a_missing_version_gets_it_created_at_the_partner(creating_world):
    w = creating_world
    add_version(w, "local", "5.0")
    created = w.create_issue("local", "New", fixVersions=[{"name": "5.0"}])
    assert w.feed_all("local") == ["done"]
    link = IssueLink.objects.get(local_issue_id=created["id"])
    w.keys["partner"], w.keys["local"] = link.remote_issue_key, created["key"]
    assert w.names("partner", "fixVersions") == ["5.0"]
    assert calls(w, "partner", "POST", "/version") == 1
    w.reset_calls()
    assert set(w.feed_all("partner")) == {"echo"}
    assert w.total_writes() == 0


def test_an_ordinary_edit_costs_no_project_read_or_version_call(creating_world):
    w = creating_world
    add_version(w, "local", "3.0")
    w.edit("local", fixVersions=[{"name": "3.0"}])
    w.feed_all("local")
    w.feed_all("partner")
    w.reset_calls()

    w.edit("local", summary="Plain edit")
    assert w.feed_all("local") == ["done"]
    assert w.total_writes() == 1
    for side in ("local", "partner"):
        assert calls(w, side, "GET", f"/project/{PROJECT[side]}") == 0
        assert calls(w, side, "POST", "/version") == 0


def test_a_second_issue_with_the_same_missing_version_creates_nothing_more(creating_world):
    w = creating_world
    add_version(w, "local", "3.0")
    w.edit("local", fixVersions=[{"name": "3.0"}])
    assert w.feed_all("local") == ["done"]
    w.feed_all("partner")
    second = w.create_issue("local", "Second", fixVersions=[{"name": "3.0"}])
    w.reset_calls()
    assert w.feed_all("local") == ["done"]
    link = IssueLink.objects.get(local_issue_id=second["id"])
    partner_issue = w.api("partner", "GET", f"/issue/{link.remote_issue_key}")
    assert [v["name"] for v in partner_issue["fields"]["fixVersions"]] == ["3.0"]
    assert calls(w, "partner", "POST", "/version") == 0
    assert [v["name"] for v in _project(w, "partner")["versions"]].count("3.0") == 1


def test_no_right_to_create_versions_is_recorded_and_not_asked_again(creating_world):
    w = creating_world
    store = w.sims["partner"].store
    with store.lock:  # the partner's admin gave the sync account no project-admin rights
        store.find_user(SYNC["partner"][0])["admin"] = False
    add_version(w, "local", "3.0")
    w.edit("local", summary="B", fixVersions=[{"name": "3.0"}, {"name": "1.0"}])
    assert w.feed_all("local") == ["done"]

    assert w.fields("partner")["summary"] == "B"
    assert w.names("partner", "fixVersions") == ["1.0"]
    event = SyncEvent.objects.filter(direction="push").latest("pk")
    assert event.result == "error"
    assert "version not created in REM" in event.message and "3.0" in event.message
    assert calls(w, "partner", "POST", "/version") == 1
    w.feed_all("partner")

    w.edit("local", summary="C")  # the same issue: not retried with every change
    assert w.feed_all("local") == ["done"]
    add_version(w, "local", "3.1")
    w.edit("local", fixVersions=[{"name": "3.0"}, {"name": "3.1"}])  # another name, same project
    assert w.feed_all("local") == ["done"]
    assert calls(w, "partner", "POST", "/version") == 1
    assert "3.1" in SyncEvent.objects.filter(direction="push").latest("pk").message


def test_creating_missing_versions_is_off_by_default_and_set_through_the_api(api, make_org):
    make_org(name="Org", public_id="org-v")
    assert api.get("/api/organizations/org-v/").json()["createMissingVersions"] is False
    changed = api.patch("/api/organizations/org-v/", {"createMissingVersions": True}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["createMissingVersions"] is True
    assert api.get("/api/organizations/org-v/").json()["createMissingVersions"] is True


def test_the_admin_form_offers_the_setting(admin_client, make_org):
    org = make_org(name="Org", public_id="org-w")
    page = admin_client.get(f"/admin/organizations/organization/{org.pk}/change/")
    assert page.status_code == 200
    assert b'name="create_missing_versions"' in page.content
