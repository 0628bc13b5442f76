"""Push under duress: duplicates, rate limits, lost answers, killed workers, a stopped broker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from devtools.supervisor import Supervisor, free_port
from webhooks.models import WebhookDelivery

from .conftest import (
    WEBHOOK_SECRET,
    register_webhook,
    relay_lock_held,
    sim_call,
    start_worker,
    wait_until,
)
from .test_push import local_create, make_org, partner_issues

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sims(sync_env, local_sim, partner_cloud):
    local_sim.reset()
    partner_cloud.reset()
    org = make_org(partner_cloud)
    return local_sim, partner_cloud, org


def partner_calls(partner, method: str | None = None, path_part: str = "") -> list[dict]:
    calls = requests.get(f"{partner.base_url}/_sim/calls", timeout=5).json()["calls"]
    return [
        c for c in calls if (method is None or c["method"] == method) and path_part in c["path"]
    ]


def stored_issue(sim, key: str) -> dict | None:
    """An issue as the simulator holds it, read without a REST call (faults do not apply)."""
    issues = requests.get(f"{sim.base_url}/_sim/state", timeout=5).json()["issues"]
    return next((i for i in issues.values() if i["key"] == key), None)


def faults(sim, **settings) -> None:
    response = requests.post(f"{sim.base_url}/_sim/faults", json=settings, timeout=5)
    assert response.status_code == 200, response.text


def at(call: dict) -> float:
    return datetime.strptime(call["at"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def captured_delivery(local, url: str) -> tuple[bytes, dict]:
    """Jira's own webhook body for the next change, captured from the simulator's log."""
    log = wait_until(
        lambda: requests.get(f"{local.base_url}/_sim/deliveries", timeout=5).json()["deliveries"]
    )
    entry = log[-1]
    body = entry["body"]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return raw, entry


def test_the_same_delivery_posted_five_times_at_once_gives_one_issue_and_one_write(sims, sync_env):
    local, partner, org = sims
    # The local Jira's webhook goes to a URL that refuses it (wrong secret, 401: not
    # retried), so we hold Jira's real body and post it ourselves.
    register_webhook(local, f"{sync_env.url}/webhooks/local/?secret=wrong", 'project = "LOC"')
    local_create(local, "Posted five times")
    body, entry = captured_delivery(local, sync_env.url)
    identifier = "dup-test-" + str(time.time())

    def post(_):
        return requests.post(
            f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Atlassian-Webhook-Identifier": identifier,
            },
            timeout=10,
        ).status_code

    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(post, range(5)))
    assert all(s in (200, 202) for s in statuses), statuses
    assert statuses.count(202) == 1
    wait_until(lambda: partner_issues(partner))
    wait_until(lambda: WebhookDelivery.objects.filter(status="done").count() == 1)
    time.sleep(1.0)  # anything still in flight would show now
    assert WebhookDelivery.objects.count() == 1
    assert len(partner_issues(partner)) == 1
    creates = [c for c in partner_calls(partner, "POST") if c["path"] == "/rest/api/3/issue"]
    edits = partner_calls(partner, "PUT", "/rest/api/3/issue/")
    assert len(creates) == 1
    assert edits == []


def test_rate_limited_partner_is_not_called_before_retry_after(sims, sync_env):
    local, partner, org = sims
    register_webhook(
        local, f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}", 'project = "LOC"'
    )
    key = local_create(local, "Before the limit")["key"]
    remote_key = wait_until(lambda: partner_issues(partner))[0]["key"]
    wait_until(lambda: not WebhookDelivery.objects.exclude(status__in=["done", "ignored"]))
    requests.delete(f"{partner.base_url}/_sim/calls", timeout=5)

    faults(partner, rate_limit_count=2, retry_after=2)
    sim_call(local, "PUT", f"/rest/api/3/issue/{key}", json={"fields": {"summary": "After"}})
    wait_until(lambda: stored_issue(partner, remote_key)["summary"] == "After", timeout=30)
    calls = [c for c in partner_calls(partner) if c["path"].startswith("/rest/api")]
    # The check reads above are ours too: look at the sync's calls (the edit).
    edit_calls = [c for c in calls if c["method"] == "PUT"]
    limited = [c for c in calls if c.get("fault") == "rate_limit"]
    assert len(limited) == 2
    for call in limited:
        later = [c for c in calls if c["seq"] > call["seq"] and c.get("user")]
        sync_later = [c for c in later if c["method"] == "PUT"]
        assert sync_later, "the change never arrived"
        assert at(sync_later[0]) - at(call) >= 2.0 - 0.01
    assert edit_calls[-1]["status"] == 204


def test_a_lost_create_response_still_gives_exactly_one_partner_issue(sims, sync_env):
    local, partner, org = sims
    register_webhook(
        local, f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}", 'project = "LOC"'
    )
    faults(partner, response_lost_count=1, path_pattern=r"^/rest/api/3/issue$")
    local_create(local, "Answer lost")
    wait_until(lambda: partner_issues(partner))
    wait_until(
        lambda: (
            WebhookDelivery.objects.filter(status="done").count() == WebhookDelivery.objects.count()
        ),
        timeout=30,
    )
    time.sleep(2.5)
    issues = partner_issues(partner)
    assert len(issues) == 1
    assert issues[0]["fields"]["summary"] == "Answer lost"
    lost = [c for c in partner_calls(partner, "POST") if c.get("fault") == "response_lost"]
    assert len(lost) == 1


def test_a_worker_killed_mid_push_completes_after_restart(
    sims, sync_env, worker, worker_env, processes
):
    local, partner, org = sims
    register_webhook(
        local, f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}", 'project = "LOC"'
    )
    faults(partner, latency_ms=1500)
    local_create(local, "Killed in flight")
    wait_until(lambda: WebhookDelivery.objects.filter(status="processing").exists())
    time.sleep(0.5)  # inside a slow partner call now
    worker.kill()
    faults(partner, latency_ms=0)
    start_worker(processes, worker_env)  # the session's processes: it serves the next tests
    wait_until(lambda: partner_issues(partner), timeout=40)
    wait_until(
        lambda: WebhookDelivery.objects.exclude(status__in=["done", "ignored"]).count() == 0,
        timeout=40,
    )
    time.sleep(2)
    issues = partner_issues(partner)
    assert len(issues) == 1
    assert issues[0]["fields"]["summary"] == "Killed in flight"


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_deliveries_are_stored_while_the_broker_is_down_and_processed_after(
    local_sim, partner_cloud, worker_env, tmp_path
):
    local_sim.reset()
    partner_cloud.reset()
    make_org(partner_cloud)
    broker_port = free_port()

    def start_broker():
        subprocess.run(  # noqa: S603
            [
                "redis-server",
                "--port",
                str(broker_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(tmp_path),
                "--logfile",
                str(tmp_path / "redis.log"),
            ],
            check=True,
        )
        wait_until(
            lambda: (
                subprocess.run(  # noqa: S603
                    ["redis-cli", "-p", str(broker_port), "ping"], capture_output=True
                ).returncode
                == 0
            )
        )

    def stop_broker():
        subprocess.run(  # noqa: S603
            ["redis-cli", "-p", str(broker_port), "shutdown", "nosave"], capture_output=True
        )

    start_broker()
    web_port = free_port()
    env = dict(worker_env, CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_port}/0")
    env["VAR_DIR"] = str(tmp_path)
    own = Supervisor()
    # The session's worker shares the database, not this broker: no relay sends meanwhile
    # (this worker's sweeper sends the delivery once the broker is back).
    with relay_lock_held():
        try:
            own.start(
                "web",
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"],
                env=env,
            )
            own.wait_http(f"http://127.0.0.1:{web_port}/healthz")
            start_worker(own, env)
            register_webhook(
                local_sim,
                f"http://127.0.0.1:{web_port}/webhooks/local/?secret={WEBHOOK_SECRET}",
                'project = "LOC"',
            )
            stop_broker()
            health = requests.get(f"http://127.0.0.1:{web_port}/healthz", timeout=10)
            assert health.status_code == 503 and health.json()["down"] == ["broker"]

            local_create(local_sim, "Sent while the broker was down")

            def answered():
                log = requests.get(f"{local_sim.base_url}/_sim/deliveries", timeout=5).json()
                return [d for d in log["deliveries"] if d["status"] == "delivered"]

            delivered = wait_until(answered)
            assert delivered[0]["attempts"][-1]["status"] in (200, 202)
            assert WebhookDelivery.objects.filter(status="pending").count() == 1
            time.sleep(1)
            assert partner_issues(partner_cloud) == []

            start_broker()
            wait_until(lambda: partner_issues(partner_cloud), timeout=40)
            issues = partner_issues(partner_cloud)
            assert len(issues) == 1
            assert issues[0]["fields"]["summary"] == "Sent while the broker was down"
        finally:
            own.stop(20)
            stop_broker()
