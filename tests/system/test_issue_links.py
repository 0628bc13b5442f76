"""Issue links end to end (issue 15, item 2): a Cloud local site and a Data Center partner,
the web service and a real worker; links between synced issues cross both ways over HTTP,
removals follow, and nothing ping-pongs."""

from __future__ import annotations

import time

import pytest

from sync.models import RelationLink
from webhooks.models import WebhookDelivery

from .conftest import connect, wait_until
from .rounds import (
    Rounds,
    Site,
    assert_converged_without_ping_pong,
    clear_calls,
    issues_of,
    settled,
)
from .test_two_way import LOCAL_USER, PARTNER_USER

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["datacenter", "cloud"])
def cloud_dc(request, sync_env, local_sim):
    """The Cloud local site and a Data Center partner (and, as a second case, a Cloud one:
    its link changes also come as `jira:issue_updated` events, handled in parallel)."""
    partner_sim = request.getfixturevalue(
        "partner_dc" if request.param == "datacenter" else "partner_cloud"
    )
    local, partner, org = connect(sync_env, local_sim, partner_sim, request.param)
    sites = Site(local, LOCAL_USER[0]), Site(partner, PARTNER_USER[0])
    for site in sites:
        site.add_people()
    return (*sites, org)


def new_pair(local: Site, partner: Site, summary: str) -> tuple[str, str]:
    key = local.create(summary)
    found = wait_until(
        lambda: next((i for i in issues_of(partner, "REM") if _summary(i) == summary), None)
    )
    wait_until(lambda: settled(local, partner), timeout=30)
    return key, found["key"]


def _summary(issue: dict) -> str:
    return (issue.get("fields") or {}).get("summary") or ""


def links(site: Site, key: str) -> list[tuple[str, str, str]]:
    return sorted(
        (
            x["type"]["name"],
            "outward" if "outwardIssue" in x else "inward",
            (x.get("outwardIssue") or x.get("inwardIssue"))["key"],
        )
        for x in site.fields(key).get("issuelinks") or []
    )


def test_links_cross_between_cloud_and_data_center_and_removals_follow(cloud_dc):
    local, partner, org = cloud_dc
    a, ra = new_pair(local, partner, "Alpha")
    b, rb = new_pair(local, partner, "Beta")
    c, rc = new_pair(local, partner, "Gamma")
    clear_calls(local, partner)

    # A local link reaches the partner: one write there, the echo costs nothing.
    body = {"type": {"name": "Blocks"}, "inwardIssue": {"key": a}, "outwardIssue": {"key": b}}
    local.ok("POST", "/issueLink", json=body)
    wait_until(lambda: links(partner, ra) == [("Blocks", "outward", rb)], timeout=30)
    wait_until(lambda: settled(local, partner), timeout=30)

    # A partner link reaches us.
    body = {"type": {"name": "Relates"}, "inwardIssue": {"key": rc}, "outwardIssue": {"key": ra}}
    partner.ok("POST", "/issueLink", json=body)
    wait_until(lambda: ("Relates", "inward", c) in links(local, a), timeout=30)
    wait_until(lambda: settled(local, partner), timeout=30)

    # The partner removes the copy of our link: ours goes too.
    copy = next(x for x in partner.fields(ra)["issuelinks"] if x["type"]["name"] == "Blocks")
    partner.ok("DELETE", f"/issueLink/{copy['id']}")
    wait_until(lambda: links(local, a) == [("Relates", "inward", c)], timeout=30)
    wait_until(lambda: settled(local, partner), timeout=30)

    assert links(partner, ra) == [("Relates", "inward", rc)]
    assert RelationLink.objects.count() == 1
    # Three genuine changes, three writes of the sync's; then quiet (no ping-pong).
    assert local.writes() + partner.writes() == 3, (local.sync_writes(), partner.sync_writes())
    deliveries = WebhookDelivery.objects.count()
    time.sleep(3)
    assert WebhookDelivery.objects.count() == deliveries
    assert not WebhookDelivery.objects.filter(status__in=["dead", "failed"]).exists()


def test_rounds_of_links_unlinks_and_edits_converge_with_one_write_each(cloud_dc):
    """The random rounds weighted to links: people link and unlink two issue pairs on both
    sites in turn, between edits; one write of the sync's per change, no ping-pong."""
    local, partner, org = cloud_dc
    rounds = Rounds(local, partner, ops=("link", "link", "summary", "comment"))
    rounds.start()
    rounds.run(16, seed=5)
    assert_converged_without_ping_pong(rounds)
    assert any(op.endswith(":unlink") for op in rounds.done), rounds.done
    assert any(op.endswith(":link") for op in rounds.done), rounds.done
