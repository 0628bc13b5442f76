"""Trust at the organization boundary (issue 11): what a partner's deliveries may make the
engine do, and what leaves for a partner. Real simulators over HTTP, the real task."""

from __future__ import annotations

import json
import time

import pytest

from sync import engine
from sync.jobs import job_build
from sync.models import IssueLink, SyncEvent

pytestmark = pytest.mark.django_db


def _issue_updated(hooks: list[dict]) -> dict:
    return next(h for h in hooks if json.loads(h["raw"])["webhookEvent"] == "jira:issue_updated")


# --- clock skew (item 6) -------------------------------------------------------------------------


@pytest.mark.parametrize("skew", ["60 s in the future", "in seconds", "30 days old"])
def test_a_skewed_timestamp_never_fails_the_delivery_after_the_write(world, skew):
    world.edit("local", summary=f"skewed {skew}")
    hook = _issue_updated(world.take("local"))
    payload = json.loads(hook["raw"])
    now_ms = int(time.time() * 1000)
    payload["timestamp"] = {
        "60 s in the future": now_ms + 60_000,
        "in seconds": now_ms // 1000,
        "30 days old": now_ms - 30 * 86_400_000,
    }[skew]
    assert world.feed("local", hook, body=json.dumps(payload).encode()) == "done"
    assert world.fields("partner")["summary"] == f"skewed {skew}"
    written = SyncEvent.objects.filter(result="written").latest("pk")
    assert written.latency_ms is not None and 0 <= written.latency_ms <= 2**31 - 1


# --- NUL characters (weak point) ----------------------------------------------------------------


def test_a_nul_in_a_summary_is_stored_safely_and_does_not_loop(world):
    world.edit("local", summary="nul\u0000inside")
    assert world.feed_all("local") == ["done"]
    link = IssueLink.objects.get()
    assert "\\u0000" not in json.dumps(link.state)
    assert world.fields("partner")["summary"] == "nulinside"
    world.reset_calls()
    assert set(world.feed_all("partner")) == {"echo"}
    assert world.total_writes() == 0


def test_a_nul_in_an_error_from_a_partner_is_recorded_safely(world):
    job = job_build(
        project_mapping=world.org.project_mappings.get(), way="push", issue_id="1", issue_key="X"
    )
    change = engine.Change(action="update", errors=["summary: bad\u0000value"])
    engine.record(job, None, change)
    assert SyncEvent.objects.latest("pk").message == "summary: badvalue"
