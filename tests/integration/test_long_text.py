"""Long text: a value over Jira's 32,767-character limit is cut to fit with a visible marker,
written once and recorded; its copy's webhook is an echo, and a later edit still syncs.
Cloud (ADF) and Data Center (wiki markup), both ways."""

from __future__ import annotations

import json

import pytest

from sync import fields
from sync.models import IssueLink, SyncEvent

from .test_loop_prevention import OTHER, WAYS, World

pytestmark = pytest.mark.django_db

MARKER = "truncated by Jira sync"


@pytest.fixture(params=list(WAYS))
def mixed(settings, request):
    """A Cloud local site and a Data Center partner, one issue pair linked. Pulling, the
    partner's administrator has lifted Data Center's text limit (so a 40,000-character value
    exists there); pushing, the partner keeps Jira's limit."""
    limit = 0 if request.param == "pull" else 32767
    w = World(settings, partner_flavor="datacenter", options={"partner": {"dc_text_limit": limit}})
    w.link_pair()
    w.way = request.param
    yield w
    w.close()


def _long(world: World, side: str):
    """A value over the limit on the other side: 40,008 characters of Data Center wiki, or
    ADF whose 31,992 characters of text (within Cloud's limit) become 37,324 of wiki markup
    once bold is written `*...*`."""
    if world.versions[side] == "2":
        return "lorem ipsum " * 3334
    pair = [
        {"type": "text", "text": "lorem ipsum", "marks": [{"type": "strong"}]},
        {"type": "text", "text": " "},
    ]
    return {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": pair * 2666}]}


def _short(world: World, side: str, text: str):
    if world.versions[side] == "2":
        return text
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


def test_a_long_description_is_truncated_recorded_and_its_echo_costs_nothing(mixed):
    edited, other = WAYS[mixed.way], OTHER[WAYS[mixed.way]]
    mixed.edit(edited, description=_long(mixed, edited))

    assert mixed.feed_all(edited) == ["done"]
    copy = mixed.fields(other)["description"]
    assert MARKER in json.dumps(copy)
    assert fields.text_length(copy) <= fields.TEXT_LIMIT
    assert mixed.total_writes() == 1
    event = SyncEvent.objects.latest("pk")
    assert "description: truncated" in event.message
    assert "description: truncated" in IssueLink.objects.get().last_error
    source = mixed.fields(edited)["description"]
    assert MARKER not in json.dumps(source)  # the source keeps its full text

    mixed.reset_calls()
    assert mixed.feed_all(other) == ["echo"]
    assert mixed.total_calls() == 0

    mixed.edit(edited, description=_short(mixed, edited, "short again"))
    assert mixed.feed_all(edited) == ["done"]
    assert "short again" in json.dumps(mixed.fields(other)["description"])
    assert not IssueLink.objects.get().last_error


def test_a_long_comment_is_truncated_recorded_and_its_echo_costs_nothing(mixed):
    """Pushing, a comment within Cloud's limit goes over Data Center's with the copy's
    "<author> wrote:" header."""
    edited, other = WAYS[mixed.way], OTHER[WAYS[mixed.way]]
    body = _long(mixed, edited) if edited == "partner" else _short(mixed, edited, "z" * 32760)
    mixed.api(edited, "POST", f"/issue/{mixed.keys[edited]}/comment", json={"body": body})

    first, *rest = mixed.take(edited)  # comment_created, then jira:issue_updated
    assert mixed.feed(edited, first) == "done"
    (copy,) = mixed.api(other, "GET", f"/issue/{mixed.keys[other]}/comment")["comments"]
    assert MARKER in json.dumps(copy["body"])
    assert fields.text_length(copy["body"]) <= fields.TEXT_LIMIT
    assert "comment" in SyncEvent.objects.latest("pk").message
    assert "truncated" in SyncEvent.objects.latest("pk").message
    assert "truncated" in IssueLink.objects.get().last_error
    for hook in rest:
        mixed.feed(edited, hook)
    assert mixed.total_writes() == 1

    mixed.reset_calls()
    assert "echo" in mixed.feed_all(other)  # the copy's comment_created (the lock is used once)
    assert mixed.total_calls() == 0


def test_a_new_issue_with_a_long_description_is_created_with_it_cut(settings):
    """A partner issue over Cloud's limit (its Data Center's limit lifted) is created here,
    cut to fit, rather than refused."""
    w = World(settings, partner_flavor="datacenter", options={"partner": {"dc_text_limit": 0}})
    try:
        created = w.api(
            "partner",
            "POST",
            "/issue",
            json={
                "fields": {
                    "project": {"key": "REM"},
                    "issuetype": {"name": "Task"},
                    "summary": "Long",
                    "description": _long(w, "partner"),
                }
            },
        )
        w.keys["partner"] = created["key"]
        assert w.feed_all("partner") == ["done"]
        w.keys["local"] = IssueLink.objects.get().local_issue_key
        copy = w.fields("local")["description"]
        assert MARKER in json.dumps(copy) and fields.text_length(copy) <= fields.TEXT_LIMIT
        assert "description: truncated" in SyncEvent.objects.latest("pk").message
        w.reset_calls()
        assert set(w.feed_all("local")) <= {"echo"}
        assert w.total_writes() == 0
    finally:
        w.close()
