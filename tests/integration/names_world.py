"""Two sites that are Jira-like about names: a Cloud local site and a Data Center partner
whose components and versions carry different ids (the `id_offset` option), fed one
captured webhook at a time as in `test_loop_prevention`."""

from __future__ import annotations

from organizations import services as org_services

from .test_loop_prevention import World

NAMED_FIELDS = ("components", "fixVersions", "versions")


class NamesWorld(World):
    """`World` with a Data Center partner, distinct component/version ids on each site, and
    components and both version fields mapped."""

    def __init__(self, settings, *, partner_flavor: str = "datacenter", **org_fields) -> None:
        options = {"id_offset": 7000}
        super().__init__(
            settings,
            partner_flavor=partner_flavor,
            options={"local": options, "partner": options},
            **org_fields,
        )
        for name in NAMED_FIELDS:
            org_services.field_mapping_create(
                organization=self.org, local_field=name, remote_field=name
            )

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
