"""Which fields sync, in which direction, with which value maps (the organization's field
mappings). What a field's values mean is the field registry's business (`fields.py`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from organizations.models import (
    MAPPED_ONLY,
    STANDARD_FIELDS,
    FieldDirection,
    FieldMapping,
    Organization,
    ProjectMapping,
)

# Synced unless a field mapping says otherwise (MAPPED_ONLY: only when mapped); comments
# always, by their own path. Status moves by transition, not by edit.
DEFAULT_FIELDS = tuple(f for f in STANDARD_FIELDS if f not in MAPPED_ONLY)
PUSH, PULL = "push", "pull"
# (source side, target side) of each direction.
SIDES = {PUSH: ("local", "remote"), PULL: ("remote", "local")}


@dataclass(frozen=True)
class FieldPair:
    local: str
    remote: str
    direction: str = FieldDirection.BOTH
    value_map: dict[str, str] = field(default_factory=dict)

    def syncs(self, way: str) -> bool:
        if self.direction == FieldDirection.BOTH:
            return True
        return self.direction == way

    def source(self, way: str) -> str:
        return self.local if way == PUSH else self.remote

    def target(self, way: str) -> str:
        return self.remote if way == PUSH else self.local

    def value_map_for(self, way: str) -> dict[str, str]:
        """The value map in the direction of travel (configured local -> partner)."""
        return self.value_map if way == PUSH else {v: k for k, v in self.value_map.items()}


# This process's field pairs by (organization, its config_version, way): the version moves on
# every change of the organization's field mappings (a database trigger), so a fresh
# Organization row says whether the pairs kept here are still right.
_PAIRS: dict[tuple, tuple[FieldPair, ...]] = {}
_PAIRS_MAX = 1024


def field_pairs_of(organization: Organization, way: str) -> tuple[FieldPair, ...]:
    """`field_pairs`, kept in this process per configuration version: no query while the
    organization's field mappings are unchanged. `organization` must be read fresh (the
    version it carries decides)."""
    key = (organization.pk, organization.created_at, organization.config_version, way)
    pairs = _PAIRS.get(key)
    if pairs is None:
        if len(_PAIRS) >= _PAIRS_MAX:
            _PAIRS.clear()
        pairs = _PAIRS[key] = tuple(field_pairs(organization, way))
    return pairs


# This process's project mappings by (organization, its config_version), which every change
# of them moves too (a database trigger), as `_PAIRS`.
_PROJECT_MAPPINGS: dict[tuple, tuple[ProjectMapping, ...]] = {}


def project_mappings_of(organization: Organization) -> list[ProjectMapping]:
    """The organization's project mappings, kept in this process per configuration version,
    each a copy of its own whose `organization` is the one given. `organization` must be read
    fresh (the version it carries decides)."""
    key = (organization.pk, organization.created_at, organization.config_version)
    kept = _PROJECT_MAPPINGS.get(key)
    if kept is None:
        if len(_PROJECT_MAPPINGS) >= _PAIRS_MAX:
            _PROJECT_MAPPINGS.clear()
        kept = _PROJECT_MAPPINGS[key] = tuple(
            ProjectMapping.objects.filter(organization_id=organization.pk).order_by("pk")
        )
    mappings = [copy.copy(m) for m in kept]
    for m in mappings:
        m.organization = organization
    return mappings


def field_pairs(organization: Organization, way: str) -> list[FieldPair]:
    """The field pairs that carry changes in this direction (PUSH or PULL)."""
    configured = {
        m.local_field: FieldPair(m.local_field, m.remote_field, m.direction, m.value_map or {})
        for m in FieldMapping.objects.filter(organization=organization)
    }
    pairs = [configured.pop(name, FieldPair(name, name)) for name in DEFAULT_FIELDS]
    pairs += configured.values()
    return [p for p in pairs if p.syncs(way) and p.local != "comment"]


def issue_type_map_for(project_mapping: ProjectMapping, way: str) -> dict[str, str]:
    table = project_mapping.issue_type_map or {}
    return table if way == PUSH else {v: k for k, v in table.items()}


def user_map_for(organization: Organization, way: str) -> dict[str, str]:
    """The organization's user map in the direction of travel (configured local -> partner)."""
    table = organization.user_map or {}
    return table if way == PUSH else {v: k for k, v in table.items()}


def default_user_for(organization: Organization, way: str) -> str:
    """The default user of the target side (the 'default user' policy), or ""."""
    return organization.default_remote_user if way == PUSH else organization.default_local_user
