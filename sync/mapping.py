"""Which fields sync, and how a value on one side becomes a value on the other.

Values are kept in a canonical JSON form (see `read_value`) both for comparing against a
link's agreed state and for writing (`write_value`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jiraapi import adf
from jiraapi.client import CLOUD, JiraClient
from organizations.models import (
    STANDARD_FIELDS,
    FieldDirection,
    FieldMapping,
    Organization,
    ProjectMapping,
)

# Synced unless a field mapping says otherwise (reporter and components only when mapped;
# comments always, by their own path). Status moves by transition, not by edit.
DEFAULT_FIELDS = tuple(f for f in STANDARD_FIELDS if f not in ("reporter", "components", "comment"))
NOT_EDITABLE = frozenset({"status"})
PUSH, PULL = "push", "pull"


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

    def map_value(self, value: Any, way: str) -> Any:
        table = self.value_map if way == PUSH else {v: k for k, v in self.value_map.items()}
        if isinstance(value, str):
            return table.get(value, value)
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            return {**value, "value": table.get(value["value"], value["value"])}
        if isinstance(value, list):
            return [self.map_value(v, way) for v in value]
        return value


def field_pairs(organization: Organization, way: str) -> list[FieldPair]:
    """The field pairs that carry changes in this direction (PUSH or PULL)."""
    configured = {
        m.local_field: FieldPair(m.local_field, m.remote_field, m.direction, m.value_map or {})
        for m in FieldMapping.objects.filter(organization=organization)
    }
    pairs = [configured.pop(name, FieldPair(name, name)) for name in DEFAULT_FIELDS]
    pairs += configured.values()
    return [p for p in pairs if p.syncs(way) and p.local != "comment"]


# --- reading ------------------------------------------------------------------------------


def _user(value: dict | None) -> dict | None:
    if not value:
        return None
    return {
        "id": value.get("accountId") or value.get("name") or value.get("key"),
        "email": value.get("emailAddress") or "",
        "name": value.get("displayName") or "",
    }


def _custom(value: Any) -> Any:
    if isinstance(value, dict):
        if "value" in value:
            return {"value": value["value"]}
        if "name" in value:
            return {"name": value["name"]}
        if "accountId" in value or "key" in value:
            return _user(value)
    if isinstance(value, list):
        return [_custom(v) for v in value]
    return value


def read_value(name: str, fields: dict) -> Any:
    """The canonical value of one field from a REST issue's `fields`."""
    value = fields.get(name)
    if name in ("priority", "issuetype", "status"):
        return (value or {}).get("name")
    if name == "labels":
        return sorted(value or [])
    if name in ("assignee", "reporter"):
        return _user(value)
    if name == "summary":
        return value or ""
    if name.startswith("customfield_"):
        return _custom(value)
    return value


# --- converting ---------------------------------------------------------------------------


def convert_description(value: Any, source_flavor: str, target_flavor: str) -> Any:
    if value in (None, ""):
        return None
    if source_flavor == target_flavor:
        return value
    if target_flavor == CLOUD:
        return adf.wiki_to_adf(value if isinstance(value, str) else adf.adf_to_wiki(value))
    return adf.adf_to_wiki(value)


def convert_issue_type(
    value: str | None, mapping: ProjectMapping | None, pair: FieldPair, way: str
) -> str | None:
    if value is None:
        return None
    if mapping is not None and mapping.issue_type_map:
        table = (
            mapping.issue_type_map
            if way == PUSH
            else {v: k for k, v in mapping.issue_type_map.items()}
        )
        value = table.get(value, value)
    return pair.map_value(value, way)


def convert_user(
    user: dict | None, pair: FieldPair, way: str, target: JiraClient, cache: dict
) -> dict | None:
    """The target side's user for a source user: by the user map, then by e-mail; else None."""
    if not user:
        return None
    table = pair.value_map if way == PUSH else {v: k for k, v in pair.value_map.items()}
    for key in (user.get("id"), user.get("email")):
        if key and key in table:
            return {"id": table[key], "email": "", "name": ""}
    email = user.get("email")
    if not email:
        return None
    if email not in cache:
        found = target.find_user(email)
        cache[email] = _user(found) if found else None
    return cache[email]


# --- writing ------------------------------------------------------------------------------


def write_value(name: str, value: Any, flavor: str) -> Any:
    """The REST `fields` entry that sets a canonical value."""
    if name in ("priority", "issuetype"):
        return {"name": value} if value else None
    if name in ("assignee", "reporter"):
        if not value:
            return None
        return {"accountId": value["id"]} if flavor == CLOUD else {"name": value["id"]}
    if name == "labels":
        return list(value or [])
    return value


def same(name: str, a: Any, b: Any) -> bool:
    """Equal as far as sync is concerned (users compare by id)."""
    if name in ("assignee", "reporter") or (isinstance(a, dict) and "id" in a):
        return (a or {}).get("id") == (b or {}).get("id")
    return a == b
