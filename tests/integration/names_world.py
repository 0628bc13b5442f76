"""Two sites that are Jira-like about names: a Cloud local site and a Data Center partner
whose components and versions carry different ids (the `id_offset` option), fed one
captured webhook at a time as in `test_loop_prevention`."""

from __future__ import annotations

import requests

from jirasim import JiraSim
from jirasim.testing import WebhookReceiver
from organizations import services as org_services

from .test_loop_prevention import ALICE, EVENTS, SYNC, World

NAMED_FIELDS = ("components", "fixVersions", "versions")


class NamesWorld(World):
    """`World` with a Data Center partner, distinct component/version ids on each site, and
    components and both version fields mapped."""

    def __init__(self, settings, *, partner_flavor: str = "datacenter", **org_fields) -> None:
        users = {side: [":".join(SYNC[side]), ":".join(ALICE)] for side in SYNC}
        options = {"id_offset": 7000}
        self.sims = {
            "local": JiraSim("cloud", ["LOC:Local"], users["local"], options=options),
            "partner": JiraSim(partner_flavor, ["REM:Partner"], users["partner"], options=options),
        }
        self.hooks = {side: WebhookReceiver() for side in self.sims}
        for side, sim in self.sims.items():
            sim.start()
            self.hooks[side].__enter__()
            project = "LOC" if side == "local" else "REM"
            sim.register_webhook(self.hooks[side].url, EVENTS, f'project = "{project}"')
        local, partner = self.sims["local"], self.sims["partner"]
        settings.LOCAL_JIRA_URL = local.base_url
        settings.LOCAL_JIRA_USER, settings.LOCAL_JIRA_TOKEN = SYNC["local"]
        self.org = org_services.organization_create(
            name="Partner",
            remote_base_url=partner.base_url,
            remote_flavor=partner_flavor,
            remote_user=SYNC["partner"][0],
            remote_token=SYNC["partner"][1],
            sync_direction="bidirectional",
            **org_fields,
        )
        org_services.project_mapping_create(
            organization=self.org, local_project_key="LOC", remote_project_key="REM"
        )
        for name in NAMED_FIELDS:
            org_services.field_mapping_create(
                organization=self.org, local_field=name, remote_field=name
            )
        self.keys: dict[str, str] = {}

    def api(self, side, method, path, who=ALICE, **kwargs):
        version = "3" if self.sims[side].flavor == "cloud" else "2"
        response = requests.request(
            method,
            f"{self.sims[side].base_url}/rest/api/{version}{path}",
            auth=who,
            timeout=10,
            **kwargs,
        )
        assert response.status_code < 400, response.text
        return response.json() if response.content else None

    def names(self, side: str, field: str) -> list[str]:
        return sorted(v["name"] for v in self.fields(side)[field] or [])

    def ids(self, side: str, pool: str) -> dict[str, str]:
        project = "LOC" if side == "local" else "REM"
        found = self.api(side, "GET", f"/project/{project}")
        return {v["name"]: v["id"] for v in found[pool]}

    def add_component(self, side: str, name: str) -> None:
        """A component only this site's project has (Jira admins add them in the UI)."""
        store = self.sims[side].store
        with store.lock:
            project = store.projects["LOC" if side == "local" else "REM"]
            project["components"].append(
                {"id": store._next("component"), "name": name, "description": ""}
            )
