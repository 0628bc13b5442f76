"""Components and versions cross by name (issue 12, item 5).

Each Jira site numbers its components and versions itself, so the same name has different
ids on the two sites; a Data Center changelog names the field "Component" / "Fix Version"
with no `fieldId`. A change crosses by name both ways, its echo is known as ours, and a name
the other site does not have is recorded without failing the rest of the edit.
"""

from __future__ import annotations

import pytest

from sync.models import IssueLink, SyncEvent

from .names_world import NamesWorld
from .test_loop_prevention import OTHER, WAYS

pytestmark = pytest.mark.django_db


def test_the_two_sites_number_their_components_apart(names_world):
    local, partner = (
        names_world.ids("local", "components"),
        names_world.ids("partner", "components"),
    )
    assert local.keys() == partner.keys()
    assert not set(local.values()) & set(partner.values())


@pytest.mark.parametrize("field", ["components", "fixVersions", "versions"])
@pytest.mark.parametrize("way", WAYS)
def test_a_named_value_crosses_by_name_and_its_echo_writes_nothing_back(names_world, way, field):
    w = names_world
    edited, other = WAYS[way], OTHER[WAYS[way]]
    pool = "components" if field == "components" else "versions"
    name = sorted(w.ids(edited, pool))[-1]
    w.edit(edited, **{field: [{"id": w.ids(edited, pool)[name]}]})
    assert w.feed_all(edited) == ["done"]
    assert w.names(other, field) == [name]
    assert w.total_writes() == 1
    w.reset_calls()

    assert w.feed_all(other) == ["echo"]
    assert w.total_writes() == 0
    assert w.names(edited, field) == [name]


@pytest.mark.parametrize("way", WAYS)
def test_adding_a_second_component_and_removing_one_cross_by_name(names_world, way):
    w = names_world
    edited, other = WAYS[way], OTHER[WAYS[way]]
    w.edit(edited, components=[{"name": "Backend"}])
    w.feed_all(edited)
    w.feed_all(other)
    w.edit(edited, components=[{"name": "Backend"}, {"name": "Frontend"}])
    assert w.feed_all(edited) == ["done"]
    assert w.names(other, "components") == ["Backend", "Frontend"]
    assert w.feed_all(other) == ["echo"]
    w.edit(edited, components=[{"name": "Frontend"}])
    assert w.feed_all(edited) == ["done"]
    assert w.names(other, "components") == ["Frontend"]
    w.reset_calls()
    assert w.feed_all(other) == ["echo"]
    assert w.total_writes() == 0


def test_a_name_the_partner_lacks_is_recorded_and_the_rest_of_the_edit_is_written(names_world):
    w = names_world
    w.add_component("local", "Mobile")
    w.edit("local", summary="B", components=[{"name": "Mobile"}])
    assert w.feed_all("local") == ["done"]
    assert w.fields("partner")["summary"] == "B"
    assert w.names("partner", "components") == []
    event = SyncEvent.objects.filter(direction="push").latest("pk")
    assert "Mobile" in event.message
    assert "components" in event.message
    assert set(w.feed_all("partner")) == {"echo"}


def test_known_names_of_a_partly_unknown_list_are_still_written(names_world):
    w = names_world
    w.add_component("local", "Mobile")
    w.edit("local", components=[{"name": "Backend"}, {"name": "Mobile"}])
    assert w.feed_all("local") == ["done"]
    assert w.names("partner", "components") == ["Backend"]
    assert "Mobile" in SyncEvent.objects.filter(direction="push").latest("pk").message
    w.reset_calls()
    assert set(w.feed_all("partner")) == {"echo"}
    assert w.total_writes() == 0


def test_a_cloud_partner_with_its_own_ids_is_in_step_too(settings):
    w = NamesWorld(settings, partner_flavor="cloud")
    try:
        w.link_pair()
        w.edit("partner", fixVersions=[{"name": "2.0"}])
        assert w.feed_all("partner") == ["done"]
        assert w.names("local", "fixVersions") == ["2.0"]
        w.reset_calls()
        assert w.feed_all("local") == ["echo"]
        assert w.total_writes() == 0
    finally:
        w.close()


@pytest.mark.parametrize("way", WAYS)
def test_a_late_echo_of_an_added_component_is_still_an_echo(names_world, way):
    """The changelog of an added value says only what was added: the list before is the
    list after without it (here, the list our earlier write left)."""
    w = names_world
    edited, other = WAYS[way], OTHER[WAYS[way]]
    for names in (["Backend"], ["Backend", "Frontend"], ["Frontend"]):
        w.edit(edited, components=[{"name": n} for n in names])
        assert w.feed_all(edited) == ["done"]
    first, second, third = w.take(other)
    w.reset_calls()

    assert [w.feed(other, hook) for hook in (third, first, second)] == ["echo"] * 3
    assert w.total_writes() == 0
    assert w.names(edited, "components") == w.names(other, "components") == ["Frontend"]


def test_a_new_issue_with_a_component_the_partner_lacks_is_created_without_it(settings):
    w = NamesWorld(settings)
    try:
        w.add_component("local", "Mobile")
        created = w.api(
            "local",
            "POST",
            "/issue",
            json={
                "fields": {
                    "project": {"key": "LOC"},
                    "issuetype": {"name": "Task"},
                    "summary": "New",
                    "components": [{"name": "Mobile"}, {"name": "Backend"}],
                }
            },
        )
        w.keys["local"] = created["key"]
        assert w.feed_all("local") == ["done"]
        link = IssueLink.objects.get()
        w.keys["partner"] = link.remote_issue_key
        assert w.names("partner", "components") == ["Backend"]
        assert "Mobile" in SyncEvent.objects.filter(direction="push").latest("pk").message
        w.feed_all("partner")
        w.reset_calls()
        w.edit("local", summary="Next")  # the refused name is not tried again
        assert w.feed_all("local") == ["done"]
        assert w.total_writes() == 1
    finally:
        w.close()
