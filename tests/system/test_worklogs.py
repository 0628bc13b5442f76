"""Worklogs end to end between a Cloud site (local) and a Data Center site (partner): the
web service, a real Celery worker, both simulators over HTTP (issue 15, item 8)."""

from __future__ import annotations

import pytest

from sync.models import WorklogLink
from webhooks.models import WebhookDelivery

from .conftest import LOCAL_USER, PARTNER_USER, connect, wait_until
from .rounds import (
    WORKLOG_OPS,
    Rounds,
    Site,
    assert_converged_without_ping_pong,
    clear_calls,
    settled,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

STARTED = "2026-11-26T09:30:00.000+0000"


@pytest.fixture
def sites(sync_env, local_sim, partner_dc):
    local, partner, _org = connect(
        sync_env, local_sim, partner_dc, "datacenter", sync_worklogs=True
    )
    local_site, partner_site = Site(local, LOCAL_USER[0]), Site(partner, PARTNER_USER[0])
    for site in (local_site, partner_site):
        site.add_people()
    return local_site, partner_site


def _pair(local: Site, partner: Site) -> Rounds:
    rounds = Rounds(local, partner)
    rounds.start()
    return rounds


def test_time_logged_on_either_side_appears_on_the_other_with_edits_and_deletes(sites):
    local, partner = sites
    pair = _pair(local, partner)

    logged = local.ok(
        "POST",
        f"/issue/{pair.key}/worklog",
        json={"timeSpent": "1h 30m", "started": STARTED, "comment": local.rich("Design review")},
    )
    copy = wait_until(lambda: partner.worklogs(pair.remote_key))[0]
    assert copy["timeSpentSeconds"] == 5400 and copy["started"] == STARTED
    assert copy["comment"].startswith("*Alice") and "logged:" in copy["comment"]
    assert "Design review" in copy["comment"]
    assert copy["author"]["name"] == partner.sim.user(PARTNER_USER[0])["name"]

    partner.ok(
        "POST",
        f"/issue/{pair.remote_key}/worklog",
        json={"timeSpentSeconds": 1800, "started": STARTED, "comment": "Partner testing"},
    )
    wait_until(lambda: len(local.worklogs(pair.key)) == 2)
    back = next(w for w in local.worklogs(pair.key) if w["id"] != logged["id"])
    assert back["timeSpentSeconds"] == 1800
    assert "logged:" in local.text(back["comment"])

    local.ok("PUT", f"/issue/{pair.key}/worklog/{logged['id']}", json={"timeSpent": "2h"})
    wait_until(
        lambda: (
            sorted(w["timeSpentSeconds"] for w in partner.worklogs(pair.remote_key)) == [1800, 7200]
        )
    )
    local.ok("DELETE", f"/issue/{pair.key}/worklog/{logged['id']}")
    wait_until(lambda: len(partner.worklogs(pair.remote_key)) == 1)
    wait_until(lambda: settled(local, partner), timeout=30)
    assert WorklogLink.objects.count() == 1
    # One write of the sync per change made by a person (4 changes), none for the echoes.
    assert local.writes() + partner.writes() == 4
    assert WebhookDelivery.objects.filter(event_type="worklog_created", status="echo").exists()
    assert not WebhookDelivery.objects.filter(status__in=["dead", "failed"]).exists()


def test_random_worklog_rounds_converge_with_one_write_per_change(sites):
    local, partner = sites
    rounds = Rounds(local, partner, ops=(*WORKLOG_OPS, "summary", "comment"))
    rounds.start()
    clear_calls(local, partner)
    rounds.run(16, seed=815)
    assert_converged_without_ping_pong(rounds)
    assert any(op.split(":")[2].startswith("worklog") for op in rounds.done)
