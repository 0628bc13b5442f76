"""Worklogs (issue 15, item 8), optional per organization: time logged on one side appears
on the other as a worklog by the sync account headed with its author, both ways; edits and
deletes follow; our own copies' events cost nothing; with the setting off, worklog events
are ignored without a call or a query.

Run between two Cloud sites (ADF both ways) and between Cloud and Data Center (wiki markup).
"""

from __future__ import annotations

import pytest

from jiraapi.adf import adf_to_wiki
from jiraapi.events import JiraEvent
from sync.mapping import PULL, PUSH
from sync.models import WorklogLink
from sync.services import event_process
from sync.worklogs import OFF

from .test_loop_prevention import OTHER, WAYS

pytestmark = pytest.mark.django_db

STARTED = "2026-11-26T10:00:00.000+0000"


@pytest.fixture(params=["cloud", "datacenter"])
def any_world(request):
    w = request.getfixturevalue("world" if request.param == "cloud" else "names_world")
    w.org.sync_worklogs = True
    w.org.save(update_fields=["sync_worklogs"])
    return w


def _comment(world, side: str, text: str):
    if world.sims[side].flavor == "cloud":
        return world.sims[side].adf(text)
    return text


def log_work(world, side: str, seconds: int, text: str = "", started: str = STARTED) -> str:
    body = {"timeSpentSeconds": seconds, "started": started}
    if text:
        body["comment"] = _comment(world, side, text)
    return world.api(side, "POST", f"/issue/{world.keys[side]}/worklog", json=body)["id"]


def edit_work(world, side: str, wid: str, **body) -> None:
    if "comment" in body:
        body["comment"] = _comment(world, side, body["comment"])
    world.api(side, "PUT", f"/issue/{world.keys[side]}/worklog/{wid}", json=body)


def worklogs(world, side: str) -> list[dict]:
    found = world.api(side, "GET", f"/issue/{world.keys[side]}/worklog")["worklogs"]
    for w in found:
        c = w.get("comment") or ""
        w["text"] = (adf_to_wiki(c) if isinstance(c, dict) else c).replace("\r", "")
    return found


def copy_of(side: str, wid: str) -> str:
    column = "local" if side == "local" else "remote"
    link = WorklogLink.objects.get(**{f"{column}_worklog_id": wid})
    return link.remote_worklog_id if side == "local" else link.local_worklog_id


def drain(world) -> None:
    for _ in range(3):
        world.feed_all("local")
        world.feed_all("partner")


def synced(world, way: str, seconds: int, text: str) -> tuple[str, str, str]:
    """Time logged by a person on the side `way` names, copied, every echo drained:
    (that side, the other side, the original worklog's id)."""
    author = WAYS[way]
    original = log_work(world, author, seconds, text)
    drain(world)
    return author, OTHER[author], original


@pytest.mark.parametrize("way", WAYS)
def test_logged_time_is_copied_by_the_sync_account_headed_with_its_author(any_world, way):
    w = any_world
    author, copier = WAYS[way], OTHER[WAYS[way]]
    original = log_work(w, author, 5400, "Fixed the build")
    statuses = w.feed_all(author)
    assert "done" in statuses

    (copy,) = worklogs(w, copier)
    assert copy["timeSpentSeconds"] == 5400
    assert copy["started"] == STARTED
    (mine,) = worklogs(w, author)
    assert copy["text"].startswith(f"*{mine['author']['displayName']}* logged:")
    assert "Fixed the build" in copy["text"]
    sync_user = copy["author"].get("emailAddress") or copy["author"].get("name")
    assert sync_user and sync_user.startswith("sync")
    assert copy_of(author, original) == copy["id"]


@pytest.mark.parametrize("way", WAYS)
def test_our_copys_events_are_echoes_that_cost_no_call(any_world, way):
    w = any_world
    author, copier = WAYS[way], OTHER[WAYS[way]]
    log_work(w, author, 1800, "Reviewed")
    w.feed_all(author)
    w.reset_calls()

    hooks = w.take(copier)
    kinds = [h["json"]["webhookEvent"] for h in hooks]
    assert "worklog_created" in kinds
    statuses = [w.feed(copier, h) for h in hooks]
    assert statuses[kinds.index("worklog_created")] == "echo"
    assert w.total_calls() == 0
    assert len(worklogs(w, author)) == 1


@pytest.mark.parametrize("way", WAYS)
def test_an_edit_and_a_delete_of_the_original_follow_to_the_copy(any_world, way):
    w = any_world
    author, copier, original = synced(w, way, 3600, "Started")

    edit_work(w, author, original, timeSpentSeconds=7200, comment="Finished")
    assert "done" in w.feed_all(author)
    (copy,) = worklogs(w, copier)
    assert copy["timeSpentSeconds"] == 7200
    assert "Finished" in copy["text"] and copy["text"].count("logged:") == 1
    w.reset_calls()
    w.feed_all(copier)  # the edit's echo
    assert w.total_calls() == 0

    w.api(author, "DELETE", f"/issue/{w.keys[author]}/worklog/{original}")
    assert "done" in w.feed_all(author)
    assert worklogs(w, copier) == []
    assert not WorklogLink.objects.exists()
    w.reset_calls()
    w.feed_all(copier)  # the deletion's echo
    assert w.total_calls() == 0
    assert w.fields(copier)["timespent"] is None


@pytest.mark.parametrize("way", WAYS)
def test_an_edited_copy_goes_back_to_the_original_without_a_second_header(any_world, way):
    w = any_world
    author, copier, original = synced(w, way, 900, "first words")
    copy_id = copy_of(author, original)
    (copy,) = worklogs(w, copier)

    edit_work(
        w, copier, copy_id, timeSpentSeconds=1200, comment=copy["text"].replace("first", "better")
    )
    assert "done" in w.feed_all(copier)
    (back,) = worklogs(w, author)
    assert back["id"] == original
    assert back["timeSpentSeconds"] == 1200
    assert "logged:" not in back["text"]
    assert back["text"].strip() == "better words"
    w.reset_calls()
    drain(w)  # our write coming back, and anything it causes
    assert w.total_writes() == 0
    (still,) = worklogs(w, copier)
    assert still["text"].count("logged:") == 1 and "better words" in still["text"]


def test_deleting_the_copy_deletes_the_original(any_world):
    w = any_world
    _, _, original = synced(w, "push", 600, "short")
    w.api("partner", "DELETE", f"/issue/{w.keys['partner']}/worklog/{copy_of('local', original)}")
    assert "done" in w.feed_all("partner")
    assert worklogs(w, "local") == []
    w.reset_calls()
    drain(w)
    assert w.total_calls() == 0


@pytest.mark.parametrize("way", WAYS)
def test_with_worklogs_off_a_worklog_event_is_ignored_without_a_call(world, way):
    author = WAYS[way]
    log_work(world, author, 600, "not shared")
    world.reset_calls()
    hooks = world.take(author)
    created = next(h for h in hooks if h["json"]["webhookEvent"] == "worklog_created")
    assert world.feed(author, created) == "ignored"
    assert world.total_calls() == 0
    assert worklogs(world, OTHER[author]) == []


def test_with_worklogs_off_a_partner_worklog_event_costs_no_query(world, django_assert_num_queries):
    log_work(world, "partner", 600)
    created = next(
        h for h in world.take("partner") if h["json"]["webhookEvent"] == "worklog_created"
    )
    event = JiraEvent.parse(created["json"])
    world.reset_calls()
    with django_assert_num_queries(0):
        outcome = event_process(event=event, way=PULL, organization=world.org)
    assert (outcome.status, outcome.reason, outcome.calls) == ("ignored", OFF, 0)
    pushed = event_process(event=event, way=PUSH)
    assert pushed.status == "ignored" and pushed.calls == 0


def test_the_issue_update_jira_fires_for_a_worklog_costs_no_call(any_world):
    w = any_world
    log_work(w, "local", 600)
    hooks = w.take("local")
    update = next(h for h in hooks if h["json"].get("issue_event_type_name") == "issue_worklogged")
    w.reset_calls()
    assert w.feed("local", update) in ("done", "echo")
    assert w.total_calls() == 0


def test_a_worklog_restricted_to_a_role_stays_on_its_site(any_world):
    w = any_world
    body = {
        "timeSpentSeconds": 600,
        "started": STARTED,
        "visibility": {"type": "role", "value": "Developers"},
    }
    w.api("local", "POST", f"/issue/{w.keys['local']}/worklog", json=body)
    w.feed_all("local")
    assert worklogs(w, "partner") == []
    assert not WorklogLink.objects.exists()


def test_a_partner_worklog_event_for_an_unlinked_issue_is_ignored_without_a_call(any_world):
    w = any_world
    body = (
        b'{"timestamp": 1764150000000, "webhookEvent": "worklog_created", '
        b'"worklog": {"id": "77", "issueId": "99999", "timeSpentSeconds": 60}}'
    )
    w.reset_calls()
    assert w.feed("partner", {"raw": body, "headers": {}}) == "ignored"
    assert w.feed("partner", {"raw": body.replace(b'"77"', b"[]"), "headers": {}}) == "ignored"
    assert w.total_calls() == 0


@pytest.mark.parametrize("way", WAYS)
def test_reordered_and_repeated_worklog_events_leave_one_copy_with_the_latest_time(any_world, way):
    w = any_world
    author, copier = WAYS[way], OTHER[WAYS[way]]
    original = log_work(w, author, 600, "draft")
    edit_work(w, author, original, timeSpentSeconds=1500, comment="final")
    hooks = [h for h in w.take(author) if h["json"]["webhookEvent"].startswith("worklog_")]
    assert [h["json"]["webhookEvent"] for h in hooks] == ["worklog_created", "worklog_updated"]
    for hook in reversed(hooks):  # the edit first, then the (stale) creation
        w.feed(author, hook)
    w.feed(author, {"raw": hooks[0]["raw"], "headers": {}})  # a repeat under another id
    drain(w)

    (copy,) = worklogs(w, copier)
    assert copy["timeSpentSeconds"] == 1500 and "final" in copy["text"]
    assert w.calls(copier, writes_only=True) == 1
