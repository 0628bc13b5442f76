"""The `id_offset` option: components and versions numbered apart per site, found strictly by id.

Jira numbers components and versions per site, so the same name has different ids on two
sites; a write may name a value by `{"id"}` or by `{"name"}`, and an id the project does not
have is refused with 400. Data Center changelog items for them carry no `fieldId`.
"""

from __future__ import annotations

import pytest

from jirasim.testing import WebhookReceiver, running_sim

from .conftest import ALL_EVENTS
from .helpers import Api


def _ids(api: Api, pool: str) -> dict[str, str]:
    project = api.ok(api.get("/project/ENG"))
    return {item["name"]: item["id"] for item in project[pool]}


@pytest.fixture
def two_sites():
    with (
        running_sim("cloud", projects=["ENG:Eng"], options={"id_offset": 7000}) as a,
        running_sim("datacenter", projects=["ENG:Eng"], options={"id_offset": 7000}) as b,
    ):
        yield Api(a), Api(b)


def test_two_sites_never_share_component_or_version_ids(two_sites):
    a, b = two_sites
    for pool in ("components", "versions"):
        ids_a, ids_b = _ids(a, pool), _ids(b, pool)
        assert set(ids_a) == set(ids_b)  # the same names
        assert not set(ids_a.values()) & set(ids_b.values())


def test_another_sites_id_is_refused_and_a_name_is_accepted(two_sites):
    a, b = two_sites
    key = b.create()
    foreign = _ids(a, "components")["Backend"]
    refused = b.put(f"/issue/{key}", {"fields": {"components": [{"id": foreign}]}})
    assert refused.status_code == 400
    assert "components" in refused.json()["errors"]
    versions = b.put(f"/issue/{key}", {"fields": {"fixVersions": [{"id": "1"}]}})
    assert versions.status_code == 400 and "fixVersions" in versions.json()["errors"]

    b.ok(b.put(f"/issue/{key}", {"fields": {"components": [{"name": "Backend"}]}}), 204)
    own = _ids(b, "versions")["2.0"]
    b.ok(b.put(f"/issue/{key}", {"fields": {"fixVersions": [{"id": own}]}}), 204)
    fields = b.ok(b.get(f"/issue/{key}"))["fields"]
    assert [c["name"] for c in fields["components"]] == ["Backend"]
    assert [v["id"] for v in fields["fixVersions"]] == [own]


def test_without_the_option_sites_share_ids():
    with (
        running_sim("cloud", projects=["ENG:Eng"]) as a,
        running_sim("datacenter", projects=["ENG:E"]) as b,
    ):
        assert _ids(Api(a), "components")["Backend"] == _ids(Api(b), "components")["Backend"]


def test_setting_the_option_renumbers_and_issues_keep_their_values():
    with running_sim("cloud", projects=["ENG:Eng"]) as sim:
        api = Api(sim)
        key = api.create(components=[{"name": "Frontend"}], fixVersions=[{"name": "1.0"}])
        before = _ids(api, "components")
        sim.set_options(id_offset=500)
        try:
            after = _ids(api, "components")
            assert before.keys() == after.keys() and before["Frontend"] != after["Frontend"]
            fields = api.ok(api.get(f"/issue/{key}"))["fields"]
            assert [c["id"] for c in fields["components"]] == [after["Frontend"]]
            assert [v["name"] for v in fields["fixVersions"]] == ["1.0"]
        finally:
            sim.options.restore()
        assert _ids(api, "components") == before


@pytest.mark.parametrize("flavor", ["cloud", "datacenter"])
def test_changelog_items_of_components_and_versions_name_them_as_each_flavor_does(flavor):
    with (
        running_sim(flavor, projects=["ENG:Eng"], webhook_retry_base=0.05) as sim,
        WebhookReceiver() as hooks,
    ):
        sim.register_webhook(hooks.url, ALL_EVENTS, "")
        api = Api(sim)
        key = api.create()
        sim.wait_idle()
        hooks.clear()
        body = {"components": [{"name": "Backend"}], "fixVersions": [{"name": "1.0"}]}
        api.ok(api.put(f"/issue/{key}", {"fields": body}), 204)
        sim.wait_idle()
        (hook,) = hooks.requests
        items = {i["field"]: i for i in hook["json"]["changelog"]["items"]}
        assert set(items) == {"Component", "Fix Version"}
        assert items["Component"]["toString"] == "Backend"
        if flavor == "cloud":
            assert items["Component"]["fieldId"] == "components"
            assert items["Fix Version"]["fieldId"] == "fixVersions"
        else:
            assert "fieldId" not in items["Component"]
            assert "fieldId" not in items["Fix Version"]
