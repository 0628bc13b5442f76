"""Over HTTP, between a Cloud site and a Cloud or Data Center partner (issue 12, items 2, 3):
a partner deleting a pushed issue, and Jira Cloud's search lagging behind writes."""

from __future__ import annotations

import pytest
import requests

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from organizations import services as org_services
from sync.models import IssueLink, SyncEvent
from webhooks.models import WebhookDelivery

from .conftest import WEBHOOK_SECRET, register_webhook, sim_call, wait_until
from .test_push import local_create, make_org

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

PARTNERS = ["partner_cloud", "partner_dc"]


@pytest.fixture
def pushing(sync_env, local_sim, request):
    """A push-only organization, our Jira's webhook registered."""
    partner = request.getfixturevalue(request.param)
    local_sim.reset()
    partner.reset()
    register_webhook(
        local_sim, f"{sync_env.url}/webhooks/local/?secret={WEBHOOK_SECRET}", 'project = "LOC"'
    )
    org = make_org(partner)
    yield local_sim, partner, org
    local_sim.clear_faults()
    partner.clear_faults()


def stored_issues(sim) -> list[dict]:
    """The site's issues as the simulator holds them (no search: it may lag)."""
    return list(requests.get(f"{sim.base_url}/_sim/state", timeout=5).json()["issues"].values())


def api(sim) -> str:
    return "/rest/api/3" if sim.flavor == "cloud" else "/rest/api/2"


def settled() -> bool:
    """Every delivery has finished."""
    deliveries = WebhookDelivery.objects.all()
    return deliveries.exists() and not deliveries.exclude(status__in=("done", "echo")).exists()


def no_dead_deliveries() -> None:
    assert not WebhookDelivery.objects.filter(status__in=("dead", "failed")).exists(), list(
        WebhookDelivery.objects.values_list("status", "last_error")
    )


def pushed(local, partner, summary: str, **fields) -> tuple[str, str]:
    key = local_create(local, summary, **fields)["key"]
    link = wait_until(
        lambda: IssueLink.objects.filter(local_issue_key=key, status="linked").first()
    )
    wait_until(settled)
    return key, link.remote_issue_key


def edit_local(local, key: str, **fields) -> None:
    response = sim_call(local, "PUT", f"/rest/api/3/issue/{key}", json={"fields": fields})
    assert response.status_code == 204, response.text


def comment_texts(sim, key: str) -> list[str]:
    comments = sim_call(sim, "GET", f"{api(sim)}/issue/{key}/comment").json()["comments"]
    return [adf_to_wiki(c["body"]) if isinstance(c["body"], dict) else c["body"] for c in comments]


# --- item 2: the partner deletes a pushed issue ------------------------------------------------


@pytest.mark.parametrize("pushing", PARTNERS, indirect=True)
def test_a_partner_delete_closes_the_pair_visibly_and_no_delivery_dies(pushing):
    local, partner, org = pushing
    key, remote_key = pushed(local, partner, "Shared, then deleted there")
    deleted = sim_call(partner, "DELETE", f"{api(partner)}/issue/{remote_key}")
    assert deleted.status_code == 204, deleted.text

    edit_local(local, key, summary="Edited after the partner deleted it")
    link = wait_until(lambda: IssueLink.objects.filter(local_issue_key=key, status="gone").first())
    wait_until(settled)
    event = SyncEvent.objects.filter(issue_link=link, result="closed").get()
    assert remote_key in event.message and "gone" in event.message
    assert not stored_issues(partner)

    edit_local(local, key, summary="Edited once more")
    wait_until(lambda: WebhookDelivery.objects.count() == 3 and settled())
    no_dead_deliveries()
    assert IssueLink.objects.get(pk=link.pk).status == "gone"
    assert not stored_issues(partner)


@pytest.mark.parametrize("pushing", PARTNERS, indirect=True)
def test_the_recreate_policy_gives_the_partner_one_new_copy_with_its_comments(pushing):
    local, partner, org = pushing
    org_services.organization_update(organization=org, data={"target_gone_policy": "recreate"})
    key, remote_key = pushed(local, partner, "Shared, deleted, created again")
    sim_call(
        local,
        "POST",
        f"/rest/api/3/issue/{key}/comment",
        json={"body": wiki_to_adf("Said before the delete")},
    )
    wait_until(lambda: comment_texts(partner, remote_key))
    wait_until(settled)
    sim_call(partner, "DELETE", f"{api(partner)}/issue/{remote_key}")

    edit_local(local, key, summary="Edited after the partner deleted it")
    link = wait_until(
        lambda: (
            IssueLink.objects.filter(local_issue_key=key, status="linked")
            .exclude(remote_issue_key=remote_key)
            .first()
        )
    )
    wait_until(settled)
    issues = stored_issues(partner)
    assert [i["key"] for i in issues] == [link.remote_issue_key]
    assert issues[0]["summary"] == "Edited after the partner deleted it"
    texts = comment_texts(partner, link.remote_issue_key)
    assert len(texts) == 1 and "Said before the delete" in texts[0]
    results = list(SyncEvent.objects.filter(issue_link=link).values_list("result", flat=True))
    assert "closed" in results
    no_dead_deliveries()


# --- item 3: search lags behind writes ----------------------------------------------------------


@pytest.mark.parametrize("pushing", PARTNERS, indirect=True)
def test_a_new_issue_in_the_push_scope_is_pushed_while_search_lags(pushing):
    local, partner, org = pushing
    mapping = org.project_mappings.get()
    org_services.project_mapping_update(mapping=mapping, data={"push_jql": "labels = shared"})
    local.set_faults(search_lag_ms=3000)
    key = local_create(local, "In scope at once", labels=["shared"])["key"]
    local_create(local, "Never in scope", labels=["private"])
    wait_until(lambda: IssueLink.objects.filter(local_issue_key=key, status="linked").exists())
    wait_until(lambda: WebhookDelivery.objects.count() == 2 and settled())
    assert [i["summary"] for i in stored_issues(partner)] == ["In scope at once"]


@pytest.mark.parametrize("pushing", PARTNERS, indirect=True)
def test_a_lost_create_answer_while_search_lags_gives_one_partner_issue(pushing):
    local, partner, org = pushing
    partner.set_faults(
        search_lag_ms=5000,
        response_lost_count=1,
        path_pattern=rf"^{api(partner)}/issue$",
    )
    key = local_create(local, "Answer lost, search behind")["key"]
    link = wait_until(
        lambda: IssueLink.objects.filter(local_issue_key=key, status="linked").first(), timeout=30
    )
    wait_until(settled, timeout=30)
    issues = stored_issues(partner)
    assert [i["key"] for i in issues] == [link.remote_issue_key]
    lost = [c for c in partner.calls() if c.get("fault") == "response_lost"]
    assert len(lost) == 1
