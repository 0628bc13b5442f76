"""`manage.py sync_backfill`: existing local issues pushed, resumable, rate-limit aware."""

from io import StringIO

import pytest
import requests
from django.core.management import call_command

from jiraapi.adf import wiki_to_adf

from .conftest import LOCAL_USER, sim_call
from .test_push import local_create, make_org, partner_issues

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def backfill_env(settings, local_sim, partner_cloud):
    local_sim.reset()
    partner_cloud.reset()
    settings.LOCAL_JIRA_URL = local_sim.base_url
    settings.LOCAL_JIRA_USER, settings.LOCAL_JIRA_TOKEN = LOCAL_USER
    return local_sim, partner_cloud, make_org(partner_cloud)


def backfill(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command("sync_backfill", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_dry_run_then_backfill_then_resume(backfill_env):
    local, partner, org = backfill_env
    keys = [local_create(local, f"Old issue {n}", labels=["legacy"])["key"] for n in range(3)]
    added = sim_call(
        local, "POST", f"/rest/api/3/issue/{keys[0]}/comment", json={"body": wiki_to_adf("kept")}
    )
    assert added.status_code == 201, added.text

    output = backfill(org.public_id, "--dry-run")
    assert "3 local issues match" in output
    assert "3 would be created" in output
    assert "[##############################] 3/3" in output
    assert partner_issues(partner) == []

    # An interrupted run: only the first issue made it.
    output = backfill(org.public_id, "--jql", f"key = {keys[0]}")
    assert "1 were created" in output
    assert len(partner_issues(partner)) == 1

    # Resuming, with the partner rate-limiting: waits for Retry-After and finishes.
    requests.post(
        f"{partner.base_url}/_sim/faults", json={"rate_limit_count": 2, "retry_after": 1}, timeout=5
    )
    output = backfill(org.public_id)
    assert "2 were created, 0 were updated, 1 already in step, 0 failed" in output
    issues = partner_issues(partner)
    assert sorted(i["fields"]["summary"] for i in issues) == [
        "Old issue 0",
        "Old issue 1",
        "Old issue 2",
    ]
    first = next(i for i in issues if i["fields"]["summary"] == "Old issue 0")
    comments = sim_call(partner, "GET", f"/rest/api/3/issue/{first['key']}/comment").json()
    assert len(comments["comments"]) == 1

    # Once more: nothing to do, no write.
    requests.delete(f"{partner.base_url}/_sim/calls", timeout=5)
    output = backfill(org.public_id)
    assert "0 were created, 0 were updated, 3 already in step" in output
    calls = requests.get(f"{partner.base_url}/_sim/calls", timeout=5).json()["calls"]
    assert [c for c in calls if c["method"] in ("POST", "PUT", "DELETE")] == []


def test_an_unknown_organization_is_a_clear_error(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No organization"):
        backfill("org-missing")
