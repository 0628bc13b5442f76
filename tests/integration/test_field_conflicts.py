"""A conflict is decided by each field's own last change (issue 12, item 8), not by the
issue's `updated`, which an unrelated edit moves."""

from __future__ import annotations

import pytest

from sync.models import SyncEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["cloud", "datacenter"])
def any_world(request):
    return request.getfixturevalue("world" if request.param == "cloud" else "names_world")


def _settle(w) -> None:
    for _ in range(3):
        w.feed_all("local")
        w.feed_all("partner")


@pytest.mark.parametrize("first", ["local", "partner"])
def test_the_later_summary_wins_though_an_unsynced_field_moved_the_other_issue_later(
    any_world, first
):
    w = any_world
    w.edit("local", summary="local says")
    w.edit("partner", summary="partner says")  # the later summary
    w.edit("local", customfield_10010="an unsynced field, changed last")
    local_hooks, partner_hooks = w.take("local"), w.take("partner")
    order = [("local", h) for h in local_hooks] + [("partner", h) for h in partner_hooks]
    if first == "partner":
        order.reverse()
    for side, hook in order:
        w.feed(side, hook)
    _settle(w)

    assert w.fields("local")["summary"] == "partner says"
    assert w.fields("partner")["summary"] == "partner says"
    conflict = SyncEvent.objects.filter(result="conflict").first()
    assert conflict is not None and "summary" in conflict.message


def test_the_later_field_change_wins_on_the_local_side_too(any_world):
    w = any_world
    w.edit("partner", summary="partner says")
    w.edit("local", summary="local says")  # the later summary
    w.edit("partner", customfield_10010="an unsynced field, changed last")
    partner_hooks, local_hooks = w.take("partner"), w.take("local")
    for hook in partner_hooks:
        w.feed("partner", hook)
    for hook in local_hooks:
        w.feed("local", hook)
    _settle(w)

    assert w.fields("local")["summary"] == w.fields("partner")["summary"] == "local says"


def test_a_plain_edit_reads_no_changelog(any_world):
    w = any_world
    w.edit("local", summary="no conflict here")
    w.feed_all("local")
    log = w.sims["partner"].calls() + w.sims["local"].calls()
    assert not [c for c in log if "changelog" in c["path"] or "changelog" in str(c.get("query"))]
    assert w.fields("partner")["summary"] == "no conflict here"
