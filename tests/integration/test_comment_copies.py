"""Comment copies (issue 12, item 6): a copy edited on the other side goes back without our
header, and a comment edited on both sides before either synced is a recorded conflict.

Run between two Cloud sites (ADF both ways) and between Cloud and Data Center (wiki markup).
"""

from __future__ import annotations

import pytest

from jiraapi.adf import adf_to_wiki
from organizations.models import ConflictPolicy
from sync.models import CommentLink, SyncEvent

from .test_loop_prevention import OTHER, WAYS

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["cloud", "datacenter"])
def any_world(request):
    return request.getfixturevalue("world" if request.param == "cloud" else "names_world")


def _body(world, side: str, text: str):
    if world.sims[side].flavor == "cloud":
        return world.sims[side].adf(text)
    return text


def add_comment(world, side: str, text: str) -> str:
    path = f"/issue/{world.keys[side]}/comment"
    return world.api(side, "POST", path, json={"body": _body(world, side, text)})["id"]


def edit_comment(world, side: str, cid: str, text: str) -> None:
    path = f"/issue/{world.keys[side]}/comment/{cid}"
    world.api(side, "PUT", path, json={"body": _body(world, side, text)})


def comment_texts(world, side: str) -> list[str]:
    found = world.api(side, "GET", f"/issue/{world.keys[side]}/comment")["comments"]
    return [
        (adf_to_wiki(c["body"]) if isinstance(c["body"], dict) else c["body"]).replace("\r", "")
        for c in found
    ]


def copy_id(side: str, cid: str) -> str:
    column = "local" if side == "local" else "remote"
    link = CommentLink.objects.get(**{f"{column}_comment_id": cid})
    return link.remote_comment_id if side == "local" else link.local_comment_id


@pytest.mark.parametrize("way", WAYS)
def test_an_edited_copy_goes_back_to_the_original_without_a_second_header(any_world, way):
    w = any_world
    author, copier = WAYS[way], OTHER[WAYS[way]]
    original = add_comment(w, author, "first words")
    w.feed_all(author)
    w.feed_all(copier)
    (copy_text,) = comment_texts(w, copier)
    assert "wrote:" in copy_text and "first words" in copy_text

    edit_comment(w, copier, copy_id(author, original), copy_text.replace("first", "better"))
    assert "done" in w.feed_all(copier)
    (back,) = comment_texts(w, author)
    assert "wrote:" not in back
    assert back.strip() == "better words"
    w.reset_calls()
    w.feed_all(author)  # our write coming back
    assert w.total_writes() == 0
    (still,) = comment_texts(w, copier)
    assert still.count("wrote:") == 1 and "better words" in still


@pytest.mark.parametrize("policy", ["later_wins", "local_wins", "remote_wins"])
def test_a_comment_edited_on_both_sides_is_a_conflict_decided_by_the_policy(any_world, policy):
    w = any_world
    w.org.conflict_policy = policy
    w.org.save(update_fields=["conflict_policy"])
    original = add_comment(w, "local", "agreed")
    w.feed_all("local")
    w.feed_all("partner")
    edit_comment(w, "local", original, "local version")
    edit_comment(w, "partner", copy_id("local", original), "partner version")  # later
    local_hooks, partner_hooks = w.take("local"), w.take("partner")
    for hook in local_hooks:
        w.feed("local", hook)
    for hook in partner_hooks:
        w.feed("partner", hook)
    for _ in range(3):  # the echoes, until both sides are quiet
        w.feed_all("local")
        w.feed_all("partner")

    winner = {
        ConflictPolicy.LATER_WINS: "partner version",
        ConflictPolicy.LOCAL_WINS: "local version",
        ConflictPolicy.REMOTE_WINS: "partner version",
    }[policy]
    (local_text,) = comment_texts(w, "local")
    (partner_text,) = comment_texts(w, "partner")
    assert local_text.strip() == winner
    assert winner in partner_text and partner_text.count("wrote:") <= 1
    conflict = SyncEvent.objects.filter(result="conflict").first()
    assert conflict is not None and "comment" in conflict.message
