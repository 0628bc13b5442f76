"""Attachments end to end between a Cloud site and a Data Center partner: the web service,
a real Celery worker and both simulators over HTTP."""

from __future__ import annotations

import os

import pytest
import requests

from sync.models import AttachmentLink
from webhooks.models import WebhookDelivery

from .conftest import LOCAL_USER, PARTNER_USER, connect, sim_call, wait_until
from .rounds import Rounds, Site, assert_converged_without_ping_pong
from .rounds import settled as rounds_settled

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

ALICE = ("alice@example.com", "alice-token")


@pytest.fixture
def cloud_dc(sync_env, local_sim, partner_dc):
    local, partner, org = connect(sync_env, local_sim, partner_dc, "datacenter")
    sites = (Site(local, LOCAL_USER[0]), Site(partner, PARTNER_USER[0]))
    for site in sites:
        site.add_people()
    return sites


def settled(sites) -> bool:
    return rounds_settled(*sites)


def upload(site: Site, key: str, name: str, content: bytes) -> dict:
    files = [("file", (name, content, "application/octet-stream"))]
    headers = {"X-Atlassian-Token": "no-check"}
    return site.ok("POST", f"/issue/{key}/attachments", files=files, headers=headers)[0]


def files(site: Site, key: str) -> list[tuple[str, int]]:
    return sorted((a["filename"], a["size"]) for a in site.fields(key).get("attachment") or [])


def content(site: Site, attachment: dict) -> bytes:
    return requests.get(attachment["content"], auth=ALICE, timeout=10).content


def pair(sites) -> tuple[str, str]:
    local, partner = sites
    key = local.ok(
        "POST",
        "/issue",
        json={"fields": {"project": {"key": "LOC"}, "issuetype": {"name": "Task"}, "summary": "F"}},
    )["key"]

    def remote_key():
        found = partner.ok("POST", "/search", json={"jql": "project = REM", "maxResults": 1})
        return found["issues"][0]["key"] if found.get("issues") else None

    remote = wait_until(remote_key)
    wait_until(lambda: settled(sites), timeout=30)
    return key, remote


def echoes_cost_nothing() -> None:
    echoes = WebhookDelivery.objects.filter(status="echo")
    assert echoes.exists()
    assert sum(echoes.values_list("calls", flat=True)) == 0


def test_attachments_cross_both_ways_and_deletes_follow(cloud_dc):
    local, partner = cloud_dc
    key, remote = pair(cloud_dc)
    here = os.urandom(200_000)
    there = os.urandom(70_000)
    upload(local, key, "from-cloud.bin", here)
    wait_until(lambda: files(partner, remote) == [("from-cloud.bin", len(here))])
    upload(partner, remote, "from-dc.bin", there)
    wait_until(lambda: ("from-dc.bin", len(there)) in files(local, key))
    wait_until(lambda: settled(cloud_dc), timeout=30)
    by_name = {a["filename"]: a for a in partner.fields(remote)["attachment"]}
    assert content(partner, by_name["from-cloud.bin"]) == here
    by_name = {a["filename"]: a for a in local.fields(key)["attachment"]}
    assert content(local, by_name["from-dc.bin"]) == there
    assert files(local, key) == files(partner, remote)
    echoes_cost_nothing()

    # A person deletes the copy at the partner: the original goes too.
    copy = next(
        a for a in partner.fields(remote)["attachment"] if a["filename"] == "from-cloud.bin"
    )
    partner.ok("DELETE", f"/attachment/{copy['id']}")
    wait_until(lambda: files(local, key) == [("from-dc.bin", len(there))])
    local.ok("DELETE", f"/attachment/{by_name['from-dc.bin']['id']}")
    wait_until(lambda: files(partner, remote) == [])
    wait_until(lambda: settled(cloud_dc), timeout=30)
    assert files(local, key) == []
    assert not AttachmentLink.objects.exists()
    assert not WebhookDelivery.objects.filter(status__in=["dead", "failed"]).exists()


def test_a_lost_upload_answer_leaves_one_copy(cloud_dc):
    local, partner = cloud_dc
    key, remote = pair(cloud_dc)
    faults = {"response_lost_count": 1, "path_pattern": "/attachments$"}
    assert sim_call(partner.sim, "POST", "/_sim/faults", json=faults).status_code == 200
    upload(local, key, "once.bin", b"z" * 123_456)
    wait_until(lambda: files(partner, remote) == [("once.bin", 123_456)])
    wait_until(lambda: settled(cloud_dc), timeout=30)
    assert files(partner, remote) == [("once.bin", 123_456)]
    assert AttachmentLink.objects.get().status == "copied"
    lost = [c for c in partner.sim.calls() if c.get("fault") == "response_lost"]
    assert len(lost) == 1


def test_rounds_of_attachment_changes_converge_with_one_write_each(cloud_dc):
    """The random rounds with attachments only (added, or deleted on either site, originals
    and copies alike), and summaries between them."""
    local, partner = cloud_dc
    rounds = Rounds(local, partner, ops=("attachment", "attachment", "summary"))
    rounds.start()
    rounds.run(16, seed=5)
    assert any("attachment_add" in done for done in rounds.done)
    assert any("attachment_delete" in done for done in rounds.done)
    assert_converged_without_ping_pong(rounds)
