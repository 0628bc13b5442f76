"""`/metrics` sums what every process counted: the Jira calls a real Celery worker (its own
processes) made show in the web process's answer (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from webhooks.models import WebhookDelivery

from .conftest import PARTNER_USER, wait_until
from .test_push import local_create, push_setup  # noqa: F401

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

TOKEN = "metrics-token-for-the-system-test"


def counted(live_server, site: str) -> float:
    text = requests.get(
        f"{live_server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "jirasync_jira_calls_total" and s.labels["site"] == site
    )


def partner_calls(partner) -> int:
    log = requests.get(f"{partner.base_url}/_sim/calls", timeout=5).json()["calls"]
    return sum(1 for c in log if c.get("user") == PARTNER_USER[0])


@pytest.mark.parametrize("push_setup", ["partner_cloud"], indirect=True)
def test_the_workers_jira_calls_show_in_the_web_processes_metrics(
    push_setup,  # noqa: F811
    settings,
    sync_env,
):
    local, partner, _org = push_setup
    settings.METRICS_TOKEN = TOKEN
    before = counted(sync_env, partner.base_url)
    requests.delete(f"{partner.base_url}/_sim/calls", timeout=5)

    local_create(local, "Counted")
    # Not by searching the partner's site: the sync account's calls are what is counted.
    wait_until(lambda: WebhookDelivery.objects.filter(status="done").exists())

    # Every call the partner's site saw from us, counted by the worker's processes.
    wait_until(lambda: counted(sync_env, partner.base_url) - before == partner_calls(partner) > 0)
