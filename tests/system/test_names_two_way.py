"""Components by name end to end (issue 12, item 5): a Cloud local site and a Data Center
partner whose components have different ids, the web service and a real worker.

A component set on either side reaches the other by name, the echo is not written back,
and the Data Center changelog ("Component", no `fieldId`) is understood.
"""

from __future__ import annotations

import json

import pytest
import requests

from organizations import services as org_services
from webhooks.models import WebhookDelivery

from .conftest import PARTNER_USER, connect, sim_call, wait_until
from .test_two_way import ALICE, settled, writes

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def names(sim, key: str, field: str = "components") -> list[str] | None:
    version = "3" if sim.flavor == "cloud" else "2"
    response = sim_call(sim, "GET", f"/rest/api/{version}/issue/{key}", auth=ALICE)
    if response.status_code != 200:
        return None
    return sorted(v["name"] for v in response.json()["fields"][field] or [])


def project_ids(sim, project: str) -> dict[str, str]:
    found = sim_call(sim, "GET", f"/rest/api/2/project/{project}", auth=ALICE).json()
    return {c["name"]: c["id"] for c in found["components"]}


@pytest.fixture
def dc_partner(sync_env, local_sim, partner_dc):
    for sim in (local_sim, partner_dc):
        sim.set_options(id_offset=7000)
    local, partner, org = connect(sync_env, local_sim, partner_dc, "datacenter", name="DC partner")
    for field in ("components", "fixVersions"):
        org_services.field_mapping_create(organization=org, local_field=field, remote_field=field)
    try:
        yield local, partner, org
    finally:
        for sim in (local, partner):
            sim.options.restore()
            sim.reset()


def test_components_cross_by_name_both_ways_between_cloud_and_data_center(dc_partner):
    local, partner, org = dc_partner
    assert not set(project_ids(local, "LOC").values()) & set(project_ids(partner, "REM").values())
    backend = project_ids(local, "LOC")["Backend"]
    fields = {
        "project": {"key": "LOC"},
        "issuetype": {"name": "Task"},
        "summary": "Named things",
        "components": [{"id": backend}],
    }
    key = sim_call(local, "POST", "/rest/api/3/issue", auth=ALICE, json={"fields": fields}).json()[
        "key"
    ]
    remote_key = wait_until(
        lambda: next(iter(org.issue_links.values_list("remote_issue_key", flat=True)), None),
        timeout=60,
    )
    try:
        wait_until(lambda: names(partner, remote_key) == ["Backend"], timeout=60)
    except AssertionError as exc:  # say what each side holds and what the sync did
        events = list(org.sync_events.values_list("direction", "action", "result", "message"))
        held = (names(local, key), remote_key, names(partner, remote_key))
        raise AssertionError(f"{exc}; held: {held}; sync events: {events}") from None
    wait_until(lambda: settled(local, partner), timeout=60)

    # A person at the partner changes the component (by its own site's id).
    for sim in (local, partner):
        requests.delete(f"{sim.base_url}/_sim/calls", timeout=5)
    frontend = project_ids(partner, "REM")["Frontend"]
    response = sim_call(
        partner,
        "PUT",
        f"/rest/api/2/issue/{remote_key}",
        auth=ALICE,
        json={"fields": {"components": [{"id": frontend}]}},
    )
    assert response.status_code == 204, response.text
    wait_until(lambda: names(local, key) == ["Frontend"], timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    assert writes(local, "sync@local.example") == 1  # the component, once
    assert writes(partner, PARTNER_USER[0]) == 0  # its echo was not written back

    # The partner's delivery named the field as Data Center does, and it was not dropped.
    partner_items = [
        item
        for d in WebhookDelivery.objects.filter(source="partner")
        for item in (json.loads(d.body).get("changelog") or {}).get("items") or []
    ]
    component_items = [i for i in partner_items if i.get("field") == "Component"]
    assert component_items and all("fieldId" not in i for i in component_items)

    # And back: a local change reaches the partner once, its echo stays home.
    for sim in (local, partner):
        requests.delete(f"{sim.base_url}/_sim/calls", timeout=5)
    response = sim_call(
        local,
        "PUT",
        f"/rest/api/3/issue/{key}",
        auth=ALICE,
        json={"fields": {"components": [{"name": "Backend"}, {"name": "Frontend"}]}},
    )
    assert response.status_code == 204, response.text
    wait_until(lambda: names(partner, remote_key) == ["Backend", "Frontend"], timeout=60)
    wait_until(lambda: settled(local, partner), timeout=60)
    assert writes(partner, PARTNER_USER[0]) == 1
    assert writes(local, "sync@local.example") == 0
