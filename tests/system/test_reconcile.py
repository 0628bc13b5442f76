"""Reconciliation catch-up end to end: webhooks that never arrive (the service was down for
longer than Jira retries, or the partner's site drops them) are healed within one period,
by a real worker's beat, with nothing created twice and nothing looping.

The session's shared worker does not reconcile (SYNC_RECONCILE_SECONDS=0 in its
environment); these tests start their own worker, with a short period.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import requests

from devtools.supervisor import free_port, wait_http
from organizations import services as org_services
from sync.models import IssueLink, ReconcileRun, SyncEvent
from sync.reconcile import HEAL_NOTE
from webhooks.models import WebhookDelivery

from .conftest import (
    LOCAL_USER,
    PARTNER_HOOK_SECRET,
    PARTNER_USER,
    WEBHOOK_SECRET,
    connect,
    register_webhook,
    start_worker,
    wait_until,
)
from .rounds import ALICE, BOB, Site, assert_converged_without_ping_pong, settled
from .test_two_way import start_rounds

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

PERIOD = 2  # seconds: the reconciliation period of these tests' worker


def reconciling_env(worker_env: dict) -> dict:
    return {**worker_env, "SYNC_RECONCILE_SECONDS": str(PERIOD)}


@pytest.fixture
def reconciling_worker(processes, worker_env):
    """A worker whose beat reconciles every PERIOD seconds; stopped after the test."""
    started = []

    def start():
        started.append(start_worker(processes, reconciling_env(worker_env)))
        return started[-1]

    yield start
    for process in started:
        process.terminate(15)


def start_web(processes, env: dict, port: int):
    """The web service under gunicorn, as deployed, on `port`."""
    command = [
        sys.executable, "-m", "gunicorn", "-c", "syncapp/gunicorn.conf.py", "syncapp.wsgi",
        "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "2",
    ]  # fmt: skip
    log = Path(env["VAR_DIR"]) / f"web-{port}-{time.monotonic_ns()}.log"
    process = processes.start("web", command, env=env, log=log)
    wait_http(f"http://127.0.0.1:{port}/healthz", processes=[process])
    return process


def create(site: Site, project: str, summary: str) -> str:
    fields = {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}
    return site.ok("POST", "/issue", json={"fields": fields})["key"]


def keys(site: Site, project: str) -> list[str]:
    path, body = (
        ("/search/jql", {"fields": ["summary"]}) if site.cloud else ("/search", {"maxResults": 100})
    )
    found = site.ok("POST", path, json={"jql": f"project = {project}", **body})["issues"]
    return sorted(i["key"] for i in found)


def pairs() -> list[tuple[str, str]]:
    return list(
        IssueLink.objects.filter(status="linked").values_list("local_issue_key", "remote_issue_key")
    )


def in_step(local: Site, partner: Site) -> bool:
    return all(local.snapshot(a) == partner.snapshot(b) for a, b in pairs())


def retries_over(sim) -> bool:
    """No delivery is waiting for another try: Jira has given up on those it could not make."""
    log = requests.get(f"{sim.base_url}/_sim/deliveries?body=false", timeout=5).json()
    return not any(d["status"] in ("pending", "retrying") for d in log["deliveries"])


def test_changes_made_while_the_service_was_down_are_healed_within_one_period(
    sync_env, local_sim, partner_cloud, processes, worker_env, reconciling_worker
):
    env = {**worker_env, "PUBLIC_BASE_URL": ""}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = start_web(processes, env, port)
    local_sim.reset()
    partner_cloud.reset()
    org = org_services.organization_create(
        name="Partner",
        remote_base_url=partner_cloud.base_url,
        remote_flavor="cloud",
        remote_user=PARTNER_USER[0],
        remote_token=PARTNER_USER[1],
        sync_direction="bidirectional",
        remote_handshake_token=PARTNER_HOOK_SECRET,
        require_signature=True,
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    register_webhook(local_sim, f"{base}/webhooks/local/?secret={WEBHOOK_SECRET}", "project = LOC")
    path = "/webhooks/" + org.incoming_webhook_url.split("/webhooks/", 1)[1]
    incoming = f"{base}{path}?secret={org.incoming_secret}"
    register_webhook(partner_cloud, incoming, "project = REM", secret=PARTNER_HOOK_SECRET)
    local, partner = Site(local_sim, LOCAL_USER[0]), Site(partner_cloud, PARTNER_USER[0])
    for site in (local, partner):
        site.add_people()
    worker = reconciling_worker()
    shared = create(local, "LOC", "Shared before the outage")
    wait_until(lambda: keys(partner, "REM"), timeout=30)
    wait_until(lambda: settled(local, partner) and in_step(local, partner), timeout=30)
    remote_key = pairs()[0][1]

    # The outage: web and reconciling worker stopped (the session's shared worker only
    # processes deliveries, and none can arrive).
    web.terminate(15)
    worker.terminate(15)
    local.edit(shared, ALICE, summary="Edited locally during the outage")
    partner.transition(remote_key, "In Progress", BOB)
    local.ok("POST", f"/issue/{shared}/comment", json={"body": local.rich("Local, unheard")})
    partner.ok("POST", f"/issue/{remote_key}/comment", json={"body": partner.rich("Partner, too")})
    new_local = create(local, "LOC", "Created locally during the outage")
    new_remote = create(partner, "REM", "Created at the partner during the outage")
    # Longer than the sites' retry window: every delivery of the outage has been given up.
    wait_until(lambda: retries_over(local_sim) and retries_over(partner_cloud), timeout=60)

    start_web(processes, env, port)
    reconciling_worker()
    wait_until(lambda: len(pairs()) == 3 and in_step(local, partner), timeout=PERIOD * 15)
    wait_until(lambda: settled(local, partner), timeout=30)

    assert local.snapshot(shared)["summary"] == "Edited locally during the outage"
    assert partner.snapshot(remote_key)["status"] == "In Progress"
    assert len(local.snapshot(shared)["comments"]) == 2
    # Each new issue was created once on the other side, and nothing else.
    assert len(keys(local, "LOC")) == 3 and len(keys(partner, "REM")) == 3
    linked = dict(pairs())
    assert new_local in linked and new_remote in linked.values()
    assert SyncEvent.objects.filter(message__contains=HEAL_NOTE).exists()
    assert sum(ReconcileRun.objects.values_list("healed", flat=True)) >= 4
    # Nothing loops: the heals' own webhooks came back as echoes, and it stays quiet.
    writes = local.writes() + partner.writes()
    deliveries = WebhookDelivery.objects.count()
    time.sleep(PERIOD * 3)
    assert local.writes() + partner.writes() == writes
    assert WebhookDelivery.objects.count() == deliveries
    assert not WebhookDelivery.objects.filter(status__in=["failed", "dead"]).exists()


def dropped_genuine(sim, sync_email: str) -> int:
    """Deliveries of a person's change the site dropped (not the sync's own echoes)."""
    sync = sim.user(sync_email)
    ours = {sync.get("name"), sync.get("key"), sync.get("accountId"), sync_email}
    log = requests.get(f"{sim.base_url}/_sim/deliveries", timeout=5).json()["deliveries"]
    count = 0
    for d in log:
        body = d.get("body") or {}
        actor = body.get("user") or (body.get("comment") or {}).get("updateAuthor") or {}
        who = {actor.get("name"), actor.get("key"), actor.get("accountId")} - {None}
        if d["status"] == "dropped" and who and not who & ours:
            count += 1
    return count


def test_a_datacenter_partner_dropping_a_fifth_of_its_webhooks_converges(
    sync_env, local_sim, partner_dc, reconciling_worker
):
    local, partner, org = connect(sync_env, local_sim, partner_dc, "datacenter")
    reconciling_worker()
    rounds = start_rounds(local, partner)
    faults = {"webhook_drop_ratio": 0.2, "seed": 20}
    response = requests.post(f"{partner.base_url}/_sim/faults", json=faults, timeout=5)
    assert response.status_code == 200, response.text

    try:
        rounds.run(30, seed=11)  # each round waits (30 s at most) for the other site
        time.sleep(PERIOD + 1)  # and one more period
        assert_converged_without_ping_pong(rounds)
        log = requests.get(f"{partner.base_url}/_sim/deliveries?body=false", timeout=5).json()
        assert any(d["status"] == "dropped" for d in log["deliveries"])
        if dropped_genuine(partner, PARTNER_USER[0]):  # a person's change was lost: healed
            assert SyncEvent.objects.filter(message__contains=HEAL_NOTE).exists()
    finally:
        requests.post(f"{partner.base_url}/_sim/faults", json={"webhook_drop_ratio": 0}, timeout=5)
