"""Issue links between synced issues (issue 15, item 2): a link between two issues synced
with the same partner is mirrored between their copies (its type matched by name, or by the
organization's map); removing it removes the copy; links to issues not synced are left
alone. Between a Cloud local site and a Cloud or Data Center partner, fed one captured
webhook at a time."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sync.engine import sync_issue
from sync.jobs import job_build
from sync.mapping import PULL, PUSH
from sync.models import IssueLink, RelationLink, RelationStatus, SyncEvent
from sync.services import issue_catch_up

from .test_loop_prevention import SYNC, World

pytestmark = pytest.mark.django_db

PROJECT = {"local": "LOC", "partner": "REM"}
OTHER = {"local": "partner", "partner": "local"}
COLUMN = {"local": "local", "partner": "remote"}


@pytest.fixture(params=["cloud", "datacenter"])
def links_world(request, settings):
    w = World(settings, partner_flavor=request.param)
    yield w
    w.close()


def new_issue(w: World, side: str, summary: str, *, project: str = "", **fields) -> str:
    """An issue of the mapped project (synced, every webhook fed), or of `project`, which
    is not mapped (never synced)."""
    key = w.api(
        side,
        "POST",
        "/issue",
        json={
            "fields": {
                "project": {"key": project or PROJECT[side]},
                "issuetype": {"name": "Task"},
                "summary": summary,
                **fields,
            }
        },
    )["key"]
    settle(w, side)
    return key


def unmapped_project(w: World, side: str) -> str:
    """A project of the site that no project mapping names."""
    key = "OTH" if side == "local" else "PRV"
    w.sims[side].store.add_project(key=key, name="Not shared")
    return key


def edit(w: World, side: str, key: str, **fields) -> None:
    w.api(side, "PUT", f"/issue/{key}", json={"fields": fields})


def settle(w: World, first: str) -> None:
    """Feed every webhook both sites send until both are quiet."""
    for _ in range(4):
        w.feed_all(first)
        w.feed_all(OTHER[first])


def copy_key(side: str, key: str) -> str:
    pair = IssueLink.objects.get(**{f"{COLUMN[side]}_issue_key": key})
    return pair.remote_issue_key if side == "local" else pair.local_issue_key


def link(w: World, side: str, source: str, dest: str, type_name: str = "Blocks") -> None:
    body = {
        "type": {"name": type_name},
        "inwardIssue": {"key": source},
        "outwardIssue": {"key": dest},
    }
    w.api(side, "POST", "/issueLink", json=body)


def links_of(w: World, side: str, key: str) -> list[tuple[str, str, str]]:
    """(type, "outward" | "inward", other key) of each of the issue's links."""
    found = w.api(side, "GET", f"/issue/{key}")["fields"]["issuelinks"]
    out = []
    for x in found:
        end = "outward" if "outwardIssue" in x else "inward"
        out.append((x["type"]["name"], end, x[f"{end}Issue"]["key"]))
    return sorted(out)


@pytest.mark.parametrize("side", ["local", "partner"])
def test_a_link_between_two_synced_issues_is_mirrored_between_their_copies(links_world, side):
    w = links_world
    a, b = new_issue(w, side, "A"), new_issue(w, side, "B")
    link(w, side, a, b, "Blocks")
    statuses = w.feed_all(side)
    assert "done" in statuses
    other = OTHER[side]
    ca, cb = copy_key(side, a), copy_key(side, b)
    assert links_of(w, other, ca) == [("Blocks", "outward", cb)]
    assert links_of(w, other, cb) == [("Blocks", "inward", ca)]
    row = RelationLink.objects.get()
    assert row.status == RelationStatus.LINKED and row.local_link_id and row.remote_link_id
    # Our copy's webhooks come back as echoes: no call, nothing written back.
    w.reset_calls()
    back = w.feed_all(other)
    assert back[0] == "echo"  # issuelink_created (Cloud's issue events: no mapped change)
    assert w.total_calls() == 0
    assert links_of(w, side, a) == [("Blocks", "outward", b)]
    assert RelationLink.objects.count() == 1


@pytest.mark.parametrize("side", ["local", "partner"])
def test_removing_a_link_removes_its_copy_and_that_echo_costs_nothing(links_world, side):
    w = links_world
    a, b = new_issue(w, side, "A"), new_issue(w, side, "B")
    link(w, side, a, b, "Relates")
    settle(w, side)
    lid = w.api(side, "GET", f"/issue/{a}")["fields"]["issuelinks"][0]["id"]
    w.api(side, "DELETE", f"/issueLink/{lid}")
    assert "done" in w.feed_all(side)
    other = OTHER[side]
    assert links_of(w, other, copy_key(side, a)) == []
    assert not RelationLink.objects.exists()
    w.reset_calls()
    assert w.feed_all(other)[0] == "echo"
    assert w.total_calls() == 0


@pytest.mark.parametrize("side", ["local", "partner"])
def test_a_copy_removed_on_the_other_side_removes_the_original_two_way(links_world, side):
    w = links_world
    other = OTHER[side]
    a, b = new_issue(w, side, "A"), new_issue(w, side, "B")
    ca = copy_key(side, a)
    edit(w, other, ca, summary="A edited there")  # the copy's pair has synced from there
    settle(w, other)
    link(w, side, a, b)
    settle(w, side)
    lid = w.api(other, "GET", f"/issue/{ca}")["fields"]["issuelinks"][0]["id"]
    w.api(other, "DELETE", f"/issueLink/{lid}")
    settle(w, other)
    assert links_of(w, side, a) == []
    assert not RelationLink.objects.exists()


def test_links_to_issues_that_are_not_synced_are_left_alone(links_world):
    w = links_world
    a = new_issue(w, "local", "A")
    lonely = new_issue(w, "local", "not shared", project=unmapped_project(w, "local"))
    link(w, "local", a, lonely)
    settle(w, "local")
    ca = copy_key("local", a)
    assert links_of(w, "partner", ca) == []
    # The copy's own link to an issue of the partner's that is not synced stays.
    theirs = new_issue(w, "partner", "partner only", project=unmapped_project(w, "partner"))
    link(w, "partner", ca, theirs, "Relates")
    settle(w, "partner")
    edit(w, "local", a, summary="A edited")
    settle(w, "local")
    assert links_of(w, "partner", ca) == [("Relates", "outward", theirs)]
    assert links_of(w, "local", a) == [("Blocks", "outward", lonely)]
    assert not RelationLink.objects.exists()


def test_a_link_made_before_the_other_end_was_synced_is_mirrored_when_it_is(links_world):
    w = links_world
    mapping = w.org.project_mappings.get()
    mapping.push_jql = "labels = shared"
    mapping.save(update_fields=["push_jql"])
    a = new_issue(w, "local", "A", labels=["shared"])
    b = new_issue(w, "local", "B")  # not in the shared scope (yet)
    assert not IssueLink.objects.filter(local_issue_key=b, status="linked").exists()
    link(w, "local", a, b, "Duplicate")
    settle(w, "local")
    assert links_of(w, "partner", copy_key("local", a)) == []  # B is not synced: nothing
    edit(w, "local", b, labels=["shared"])
    settle(w, "local")
    assert links_of(w, "partner", copy_key("local", a)) == [
        ("Duplicate", "outward", copy_key("local", b))
    ]


def map_and_link(w: World, table: dict[str, str]) -> tuple[str, str]:
    """The organization's link types mapped by `table`; two new synced local issues linked
    (Blocks); the link's events not fed yet."""
    w.org.link_type_map = table
    w.org.save(update_fields=["link_type_map"])
    a, b = new_issue(w, "local", "A"), new_issue(w, "local", "B")
    link(w, "local", a, b, "Blocks")
    return a, b


def test_a_link_type_is_renamed_by_the_organizations_map(links_world):
    w = links_world
    a, b = map_and_link(w, {"Blocks": "Relates"})
    settle(w, "local")
    ca, cb = copy_key("local", a), copy_key("local", b)
    assert links_of(w, "partner", ca) == [("Relates", "outward", cb)]
    assert links_of(w, "local", a) == [("Blocks", "outward", b)]  # nothing came back
    # ... and back the other way: a partner "Relates" becomes our "Blocks".
    c = new_issue(w, "partner", "C")
    link(w, "partner", cb, c, "Relates")
    settle(w, "partner")
    assert ("Blocks", "outward", copy_key("partner", c)) in links_of(w, "local", b)


def test_a_type_the_other_site_lacks_is_recorded_once_not_retried(links_world):
    w = links_world
    a, _ = map_and_link(w, {"Blocks": "Blocker"})
    w.feed_all("local")
    row = RelationLink.objects.get()
    assert row.status == RelationStatus.NO_TYPE and not row.remote_link_id
    assert "Blocker" in SyncEvent.objects.filter(result="error").latest("pk").message
    assert links_of(w, "partner", copy_key("local", a)) == []
    w.reset_calls()
    edit(w, "local", a, summary="A again")
    w.feed_all("local")
    assert w.calls("partner", writes_only=True) == 1  # the summary only, no link attempt
    assert RelationLink.objects.count() == 1


def test_an_ordinary_edit_reads_no_relations(links_world):
    w = links_world
    a, b = new_issue(w, "local", "A"), new_issue(w, "local", "B")
    link(w, "local", a, b)
    settle(w, "local")
    edit(w, "local", a, summary="A edited")
    hooks = w.take("local")
    with CaptureQueriesContext(connection) as queries:
        for hook in hooks:
            w.feed("local", hook)
    assert not [q for q in queries.captured_queries if "relationlink" in q["sql"].lower()]
    assert w.api("partner", "GET", f"/issue/{copy_key('local', a)}")["fields"]["summary"] == (
        "A edited"
    )


def test_a_dry_run_lists_the_link_it_would_copy_and_writes_nothing(links_world):
    w = links_world
    a, b = new_issue(w, "local", "A"), new_issue(w, "local", "B")
    link(w, "local", a, b)
    w.take("local")  # the link's events are lost: a catch-up would find it
    pair = IssueLink.objects.get(local_issue_key=a)
    w.reset_calls()

    def catch_up(dry_run: bool):
        return issue_catch_up(
            project_mapping=w.org.project_mappings.get(),
            way=PUSH,
            issue_id=pair.local_issue_id,
            issue_key=a,
            comments_changed=False,
            dry_run=dry_run,
        )

    assert f"link Blocks {b}" in catch_up(dry_run=True).fields
    assert w.total_writes() == 0
    assert not RelationLink.objects.exists()
    catch_up(dry_run=False)
    assert links_of(w, "partner", copy_key("local", a)) == [
        ("Blocks", "outward", copy_key("local", b))
    ]


@pytest.mark.parametrize(
    "issue_link",
    [
        {"id": 1, "sourceIssueId": 999991, "destinationIssueId": 999992},  # issues not synced
        {"id": "1\x00", "sourceIssueId": 2, "destinationIssueId": 3},
        {"id": 1, "sourceIssueId": [], "destinationIssueId": {}},
        "not an object",
    ],
)
def test_a_link_event_about_unknown_or_malformed_issues_is_ignored_without_calls(
    links_world, issue_link
):
    w = links_world
    new_issue(w, "partner", "P")
    w.reset_calls()
    body = {
        "timestamp": 1764140000000,
        "webhookEvent": "issuelink_created",
        "issueLink": issue_link,
    }
    assert w.feed("partner", {}, body=json.dumps(body).encode()) == "ignored"
    assert w.total_calls() == 0


def test_a_link_seen_from_both_its_ends_is_copied_once(links_world):
    w = links_world
    a, b = new_issue(w, "local", "A"), new_issue(w, "local", "B")
    link(w, "local", a, b)
    held = w.take("local")
    pair_b = IssueLink.objects.get(local_issue_key=b)
    issue_catch_up(  # the other end's pair finds the link first (a catch-up, or its own edit)
        project_mapping=w.org.project_mappings.get(),
        way=PUSH,
        issue_id=pair_b.local_issue_id,
        issue_key=b,
        comments_changed=False,
    )
    for hook in held:
        w.feed("local", hook)
    settle(w, "local")
    ca, cb = copy_key("local", a), copy_key("local", b)
    assert links_of(w, "partner", ca) == [("Blocks", "outward", cb)]
    assert RelationLink.objects.count() == 1


def test_on_cloud_the_link_changelog_alone_is_enough(settings):
    """A Cloud partner whose webhook does not send link events: its `jira:issue_updated`
    with the `Link` item carries the change (and our copies' own such events cost nothing)."""
    w = World(settings, partner_flavor="cloud")
    try:
        a, b = new_issue(w, "partner", "A"), new_issue(w, "partner", "B")
        link(w, "partner", a, b, "Relates")
        hooks = [h for h in w.take("partner") if h["json"]["webhookEvent"] == "jira:issue_updated"]
        assert hooks and all(h["json"]["changelog"]["items"][0]["field"] == "Link" for h in hooks)
        assert "done" in [w.feed("partner", h) for h in hooks]
        assert links_of(w, "local", copy_key("partner", a)) == [
            ("Relates", "outward", copy_key("partner", b))
        ]
        w.reset_calls()
        w.feed_all("local")  # our copy's events: issuelink_created and two issue_updated
        assert w.total_calls() == 0
        assert RelationLink.objects.count() == 1
    finally:
        w.close()


def test_an_issue_read_without_its_links_removes_no_copy(links_world):
    """A sync whose source issue was read with some fields only (as the drift repair reads
    it) has no links to compare: the mirrored ones stay."""
    w = links_world
    a, b = new_issue(w, "local", "A"), new_issue(w, "local", "B")
    link(w, "local", a, b)
    settle(w, "local")
    pair = IssueLink.objects.get(local_issue_key=a)
    job = job_build(
        project_mapping=w.org.project_mappings.get(), way=PUSH, issue_id=pair.local_issue_id
    )
    issue = w.api("local", "GET", f"/issue/{a}?fields=summary")
    sync_issue(replace(job, issue=issue, issue_key=a))
    assert links_of(w, "partner", copy_key("local", a)) == [
        ("Blocks", "outward", copy_key("local", b))
    ]
    assert RelationLink.objects.count() == 1


def test_a_missing_type_is_tried_again_from_the_admin_once_it_exists(
    links_world, client, django_user_model
):
    w = links_world
    a, b = map_and_link(w, {"Blocks": "Blocker"})
    settle(w, "local")
    row = RelationLink.objects.get()
    assert row.status == RelationStatus.NO_TYPE
    # The partner's Jira admin adds the type; our admin asks for the link to be tried again.
    body = {"name": "Blocker", "inward": "is blocked by", "outward": "blocks"}
    w.api("partner", "POST", "/issueLinkType", who=SYNC["partner"], json=body)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    changelist = reverse("admin:sync_relationlink_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "retry_action", "_selected_action": [row.pk]})
    assert not RelationLink.objects.exists()
    edit(w, "local", a, summary="A again")
    settle(w, "local")
    assert links_of(w, "partner", copy_key("local", a)) == [
        ("Blocker", "outward", copy_key("local", b))
    ]
    assert RelationLink.objects.get().status == RelationStatus.LINKED


def _sync_on(w: World, side: str, key: str, issue: dict) -> None:
    """A sync of `key`'s pair (on `side`) on `issue`, a read of it made earlier, as the
    events about its links run it."""
    pair = IssueLink.objects.get(**{f"{COLUMN[side]}_issue_key": key})
    job = job_build(
        project_mapping=w.org.project_mappings.get(),
        way=PUSH if side == "local" else PULL,
        issue_id=getattr(pair, f"{COLUMN[side]}_issue_id"),
    )
    sync_issue(replace(job, issue=issue, issue_key=key, links_changed=True))


def _feed_except(w: World, side: str, key: str) -> None:
    """Every webhook `side` sent but those about `key`'s issue (its end of a link)."""
    for hook in w.take(side):
        if (hook["json"].get("issue") or {}).get("key") != key:
            w.feed(side, hook)


@pytest.mark.parametrize("side", ["local", "partner"])
def test_a_stale_read_of_the_other_end_does_not_bring_a_removed_link_back(links_world, side):
    """The two ends of a link are two pairs, synced under two leases. One end's sync may hold
    a read of its issue made before the link was removed while the other end's sync removes
    the link's row and its copy: the stale read's link must not look new and be copied
    again (a write, then a second one to remove it: seen under load in the system rounds)."""
    w, other = links_world, OTHER[side]
    a, b = new_issue(w, side, "A"), new_issue(w, side, "B")
    link(w, side, a, b)
    settle(w, side)
    assert RelationLink.objects.count() == 1
    stale = w.api(side, "GET", f"/issue/{b}")  # read before the removal, with the link
    assert stale["fields"]["issuelinks"]
    w.api(side, "DELETE", f"/issueLink/{stale['fields']['issuelinks'][0]['id']}")
    _feed_except(w, side, b)  # the removal, from A's end only: its row and copy go
    assert not RelationLink.objects.exists()
    ca, cb = copy_key(side, a), copy_key(side, b)
    assert links_of(w, other, ca) == []
    w.reset_calls()
    _sync_on(w, side, b, stale)
    assert links_of(w, other, cb) == [] and links_of(w, other, ca) == []
    assert not RelationLink.objects.exists()
    assert w.total_writes() == 0
    settle(w, side)  # what B's end receives of the removal afterwards changes nothing
    assert links_of(w, other, cb) == [] and links_of(w, side, b) == []


@pytest.mark.parametrize("side", ["local", "partner"])
def test_a_stale_read_of_the_other_end_does_not_remove_a_new_link(links_world, side):
    """The same race the other way: B's end read its issue before the link was made, and
    A's end has mirrored it since; B's stale read must not take the link for a removed one
    and delete its copy (a genuine change lost until another event)."""
    w, other = links_world, OTHER[side]
    a, b = new_issue(w, side, "A"), new_issue(w, side, "B")
    stale = w.api(side, "GET", f"/issue/{b}")  # read before the link, without it
    assert not stale["fields"]["issuelinks"]
    link(w, side, a, b)
    _feed_except(w, side, b)  # the new link, from A's end only: mirrored
    ca, cb = copy_key(side, a), copy_key(side, b)
    assert links_of(w, other, ca) == [("Blocks", "outward", cb)]
    assert RelationLink.objects.count() == 1
    w.reset_calls()
    _sync_on(w, side, b, stale)
    assert links_of(w, other, ca) == [("Blocks", "outward", cb)]
    assert RelationLink.objects.count() == 1
    assert w.total_writes() == 0
