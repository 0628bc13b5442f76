"""Versions and moved issues end to end (issue 15, items 4 and 5): a Cloud local site and a
Data Center partner over HTTP, the web service and a real worker.

A fix version one side's project lacks is created at the other (the organization allows it)
and written, both ways; an issue moved to another mapped project keeps its pair and syncs
under its new key, both ways; moved out of every mapped project, its copy gets the delete
policy's comment; moved back in, the same copy syncs again (never a second one).
"""

from __future__ import annotations

import pytest
import requests

from organizations import services as org_services
from sync.models import IssueLink, LinkStatus

from .conftest import LOCAL_USER, PARTNER_USER, connect, sim_call, wait_until
from .test_names_two_way import dc_partner  # noqa: F401  (a fixture)
from .test_two_way import ALICE, settled, writes

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def api(sim) -> str:
    return "/rest/api/3" if sim.flavor == "cloud" else "/rest/api/2"


def issue(sim, key: str) -> dict | None:
    response = sim_call(sim, "GET", f"{api(sim)}/issue/{key}", auth=ALICE)
    return response.json() if response.status_code == 200 else None


def version_names(sim, key: str) -> list[str] | None:
    found = issue(sim, key)
    return sorted(v["name"] for v in found["fields"]["fixVersions"]) if found else None


def project_versions(sim, project: str) -> list[str]:
    found = sim_call(sim, "GET", f"{api(sim)}/project/{project}", auth=ALICE).json()
    return sorted(v["name"] for v in found["versions"])


def clear_calls(*sims) -> None:
    for sim in sims:
        requests.delete(f"{sim.base_url}/_sim/calls", timeout=5)


def explain(org, *pairs) -> str:
    events = list(org.sync_events.values_list("direction", "action", "result", "message"))
    return f"held: {pairs}; sync events: {events}"


def create_local(local, summary: str, **fields) -> dict:
    body = {
        "fields": {
            "project": {"key": "LOC"},
            "issuetype": {"name": "Task"},
            "summary": summary,
            **fields,
        }
    }
    response = sim_call(local, "POST", "/rest/api/3/issue", auth=ALICE, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def copy_of(org, local_id: str) -> str:
    return wait_until(
        lambda: next(
            iter(
                IssueLink.objects.filter(organization=org, local_issue_id=local_id)
                .exclude(remote_issue_key="")
                .values_list("remote_issue_key", flat=True)
            ),
            None,
        ),
        timeout=60,
    )


@pytest.fixture
def versions_partner(dc_partner):  # noqa: F811  (the fixture imported above)
    """`dc_partner` (components and fix versions mapped, each site its own ids) whose
    organization creates the versions the other project lacks."""
    local, partner, org = dc_partner
    org = org_services.organization_update(organization=org, data={"create_missing_versions": True})
    return local, partner, org


def test_a_missing_fix_version_is_created_at_the_other_site_both_ways(versions_partner):
    local, partner, org = versions_partner
    # Each site's admin made a version the other site's project does not have.
    made = sim_call(local, "POST", "/rest/api/3/version", json={"name": "3.0", "project": "LOC"})
    assert made.status_code == 201, made.text
    made = sim_call(partner, "POST", "/rest/api/2/version", json={"name": "4.0", "project": "REM"})
    assert made.status_code == 201, made.text
    assert "3.0" not in project_versions(partner, "REM")

    created = create_local(local, "Versioned", fixVersions=[{"name": "3.0"}])
    remote_key = copy_of(org, created["id"])
    try:
        wait_until(lambda: version_names(partner, remote_key) == ["3.0"], timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {explain(org, version_names(partner, remote_key))}") from None
    wait_until(lambda: settled(local, partner), timeout=60)
    assert project_versions(partner, "REM").count("3.0") == 1

    # A person at the partner adds the partner's own version: created in our project too.
    clear_calls(local, partner)
    response = sim_call(
        partner,
        "PUT",
        f"/rest/api/2/issue/{remote_key}",
        auth=ALICE,
        json={"fields": {"fixVersions": [{"name": "3.0"}, {"name": "4.0"}]}},
    )
    assert response.status_code == 204, response.text
    try:
        wait_until(lambda: version_names(local, created["key"]) == ["3.0", "4.0"], timeout=60)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; {explain(org, version_names(local, created['key']))}"
        ) from None
    wait_until(lambda: settled(local, partner), timeout=60)
    assert project_versions(local, "LOC").count("4.0") == 1
    assert writes(partner, PARTNER_USER[0]) == 0  # the echo was not written back
    assert writes(local, LOCAL_USER[0]) == 2  # the version, then the issue


@pytest.fixture
def moving_partner(sync_env, local_sim, partner_dc):
    """LOC <-> REM and LOC2 <-> REM2 mapped; OUT on both sites mapped by nothing. The
    admins' webhooks cover every project (a move out is seen only by such a webhook)."""
    local_sim.reset()
    partner_dc.reset()
    for sim, projects in ((local_sim, ("LOC2", "OUT")), (partner_dc, ("REM2", "OUT"))):
        for key in projects:
            made = requests.post(f"{sim.base_url}/_sim/projects", json={"key": key}, timeout=5)
            assert made.status_code == 201, made.text
    local, partner, org = connect(
        sync_env,
        local_sim,
        partner_dc,
        "datacenter",
        reset=False,
        local_jql="project in (LOC, LOC2, OUT)",
        partner_jql="project in (REM, REM2, OUT)",
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC2", remote_project_key="REM2"
    )
    try:
        yield local, partner, org
    finally:
        for sim in (local, partner):
            sim.reset()


def summary_of(sim, key: str) -> str | None:
    found = issue(sim, key)
    return found["fields"]["summary"] if found else None


def edit(sim, key: str, summary: str) -> None:
    response = sim_call(
        sim, "PUT", f"{api(sim)}/issue/{key}", auth=ALICE, json={"fields": {"summary": summary}}
    )
    assert response.status_code == 204, response.text


def test_moved_issues_keep_their_pair_both_ways_and_a_move_out_applies_the_delete_policy(
    moving_partner,
):
    local, partner, org = moving_partner
    created = create_local(local, "Will move")
    remote_key = copy_of(org, created["id"])
    wait_until(lambda: settled(local, partner), timeout=60)
    link = IssueLink.objects.get(organization=org, local_issue_id=created["id"])

    # Moved here to the other mapped project: the pair follows the id and the new key.
    local_key = local.move_issue(created["key"], "LOC2", ALICE[0])
    wait_until(lambda: IssueLink.objects.get(pk=link.pk).local_issue_key == local_key, timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    edit(local, local_key, "Edited under LOC2")
    wait_until(lambda: summary_of(partner, remote_key) == "Edited under LOC2", timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)

    # Moved at the partner: the pair follows their new key too, and their edits come back.
    remote_key = partner.move_issue(remote_key, "REM2", ALICE[0])
    wait_until(lambda: IssueLink.objects.get(pk=link.pk).remote_issue_key == remote_key, timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    clear_calls(local, partner)
    edit(partner, remote_key, "Edited under REM2")
    wait_until(lambda: summary_of(local, local_key) == "Edited under REM2", timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    assert writes(local, LOCAL_USER[0]) == 1 and writes(partner, PARTNER_USER[0]) == 0
    assert IssueLink.objects.filter(organization=org).count() == 1
    partner_issues = len(partner.store.issues)

    # Moved out of every mapped project: the default delete policy comments on the copy.
    local_key = local.move_issue(local_key, "OUT", ALICE[0])
    wait_until(lambda: IssueLink.objects.get(pk=link.pk).status == LinkStatus.DELETED, timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    comments = sim_call(partner, "GET", f"/rest/api/2/issue/{remote_key}/comment", auth=ALICE)
    (comment,) = comments.json()["comments"]
    assert "no longer synced" in comment["body"] and "OUT" not in comment["body"]
    assert org.sync_events.filter(direction="push", message__contains="moved out to OUT").exists()

    # Moved back in: the same copy syncs again; no second copy.
    edit(local, local_key, "Back in scope")
    local_key = local.move_issue(local_key, "LOC", ALICE[0])
    wait_until(lambda: summary_of(partner, remote_key) == "Back in scope", timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    assert IssueLink.objects.get(pk=link.pk).status == LinkStatus.LINKED
    assert len(partner.store.issues) == partner_issues
