"""The field registry: what each kind of Jira field means to the sync, defined once.

A field's kind says how to read its value from a REST issue (into a canonical JSON form kept
in the link's agreed state), how to write a canonical value back (per flavor), when two
values are the same, what identifies a value across sites (the text an echo fingerprint is
taken of), what a changelog item says it was before, and how a value crosses to the other
site (value maps, flavors, users). The engine and the echo code ask `kind_of(field_id)`;
nothing else in the product branches on a field's name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jiraapi import adf
from jiraapi.client import CLOUD
from jiraapi.events import FieldChange

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
EMPTY = (None, "", [])


@dataclass(frozen=True)
class Crossing:
    """How a value crosses from the source site to the target site, for one field pair."""

    forward: dict[str, str]  # the pair's value map, in the direction of travel
    source_flavor: str
    target_flavor: str
    issue_types: dict[str, str]  # the project mapping's issue type map, in the direction of travel
    find_user: Callable[[str], dict | None]  # a target user by e-mail (canonical), or None


def _generic_text(value: Any) -> str:
    if value in EMPTY:
        return ""
    if isinstance(value, dict) and value.get("type") == "doc":
        return _words(value)
    if isinstance(value, list):
        return " ".join(sorted(_generic_text(v) for v in value))
    if isinstance(value, dict):
        for key in ("id", "value", "name", "accountId"):
            if value.get(key):
                return str(value[key])
        return ""
    return str(value).strip()


def _words(value: Any) -> str:
    """Rich text renders differently on each side; its words are what identify it."""
    text = adf.adf_to_wiki(value) if isinstance(value, dict) else str(value)
    return _NON_WORD.sub(" ", text).strip().lower()


def _mapped(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        return table.get(value, value)
    if isinstance(value, dict) and isinstance(value.get("value"), str):
        return {**value, "value": table.get(value["value"], value["value"])}
    if isinstance(value, list):
        return [_mapped(v, table) for v in value]
    return value


class FieldKind:
    """A value passed through as Jira gives it (the base of every kind)."""

    editable = True  # False: moved by a transition, not by an edit

    def read(self, raw: Any) -> Any:
        return raw

    def write(self, value: Any, flavor: str) -> Any:
        return value

    def same(self, a: Any, b: Any) -> bool:
        return a == b

    def text(self, value: Any) -> str:
        return _generic_text(value)

    def before(self, change: FieldChange) -> Any:
        """The value the field had before, as the changelog item says (canonical form)."""
        return change.from_string

    def before_all(self, changes: list[FieldChange], now: Any) -> Any:
        """The value before an event whose changelog has `changes` (this field's items, at
        least one) and after which the field holds `now` (canonical)."""
        return self.before(changes[0])

    def cross(self, value: Any, crossing: Crossing) -> Any:
        return _mapped(value, crossing.forward)


class PlainText(FieldKind):
    def read(self, raw: Any) -> Any:
        return raw or ""


class RichText(FieldKind):
    """ADF on Cloud (REST v3), wiki markup on Data Center: converted when crossing flavors."""

    def text(self, value: Any) -> str:
        return "" if value in EMPTY else _words(value)

    def cross(self, value: Any, crossing: Crossing) -> Any:
        return convert_rich_text(value, crossing.source_flavor, crossing.target_flavor)


def convert_rich_text(value: Any, source_flavor: str, target_flavor: str) -> Any:
    if value in (None, ""):
        return None
    if source_flavor == target_flavor:
        return value
    if target_flavor == CLOUD:
        return adf.wiki_to_adf(value if isinstance(value, str) else adf.adf_to_wiki(value))
    return adf.adf_to_wiki(value)


def user_of(raw: dict | None) -> dict | None:
    """A user in canonical form: one id for both flavors (accountId, name or key)."""
    if not raw:
        return None
    return {
        "id": raw.get("accountId") or raw.get("name") or raw.get("key"),
        "email": raw.get("emailAddress") or "",
        "name": raw.get("displayName") or "",
    }


class User(FieldKind):
    """A user: by the pair's user map (id or e-mail), then by e-mail; else nobody."""

    def read(self, raw: Any) -> Any:
        return user_of(raw)

    def write(self, value: Any, flavor: str) -> Any:
        if not value:
            return None
        return {"accountId": value["id"]} if flavor == CLOUD else {"name": value["id"]}

    def same(self, a: Any, b: Any) -> bool:
        return (a or {}).get("id") == (b or {}).get("id")

    def before(self, change: FieldChange) -> Any:
        return {"id": change.from_value} if change.from_value else None

    def cross(self, value: Any, crossing: Crossing) -> Any:
        if not value:
            return None
        for key in (value.get("id"), value.get("email")):
            if key and key in crossing.forward:
                return {"id": crossing.forward[key], "email": "", "name": ""}
        email = value.get("email")
        return crossing.find_user(email) if email else None


class NamedOption(FieldKind):
    """A value chosen by name from a list the site defines (priority, resolution, ...)."""

    def read(self, raw: Any) -> Any:
        return (raw or {}).get("name") if isinstance(raw, dict) or raw is None else None

    def write(self, value: Any, flavor: str) -> Any:
        return {"name": value} if value else None


class IssueType(NamedOption):
    """Crosses by the project mapping's issue type map, then the pair's value map."""

    def cross(self, value: Any, crossing: Crossing) -> Any:
        if value is None:
            return None
        return _mapped(crossing.issue_types.get(value, value), crossing.forward)


class Status(NamedOption):
    editable = False  # reached through the workflow's transitions


class Labels(FieldKind):
    def read(self, raw: Any) -> Any:
        return sorted(raw or [])

    def write(self, value: Any, flavor: str) -> Any:
        return list(value or [])

    def before(self, change: FieldChange) -> Any:
        return sorted((change.from_string or "").split())


class Date(FieldKind):
    def before(self, change: FieldChange) -> Any:
        return change.from_value


class NamedList(FieldKind):
    """Components and versions: matched by name, since each site has its own ids."""

    def read(self, raw: Any) -> Any:
        return sorted(
            str(v.get("name")) for v in raw or [] if isinstance(v, dict) and v.get("name")
        )

    def write(self, value: Any, flavor: str) -> Any:
        return [{"name": name} for name in value or []]

    def before_all(self, changes: list[FieldChange], now: Any) -> Any:
        """Jira gives one item per value added (`to`) or removed (`from`), or one per pair
        of them: the list before is today's without the added names, with the removed."""
        names = set(now or [])
        names -= {c.to_string for c in changes if c.to_string}
        names |= {c.from_string for c in changes if c.from_string}
        return sorted(names)


class Custom(FieldKind):
    """A custom field, by the shape of its value: option, options, user, rich or plain text."""

    def read(self, raw: Any) -> Any:
        if isinstance(raw, dict):
            if "value" in raw:
                return {"value": raw["value"]}
            if "name" in raw:
                return {"name": raw["name"]}
            if "accountId" in raw or "key" in raw:
                return user_of(raw)
        if isinstance(raw, list):
            return [self.read(v) for v in raw]
        return raw

    def same(self, a: Any, b: Any) -> bool:
        if isinstance(a, dict) and "id" in a:  # a user
            return (a or {}).get("id") == (b or {}).get("id")
        return a == b

    def cross(self, value: Any, crossing: Crossing) -> Any:
        if isinstance(value, dict) and value.get("type") == "doc":  # a Cloud paragraph field
            return convert_rich_text(value, crossing.source_flavor, crossing.target_flavor)
        return _mapped(value, crossing.forward)


PASS_THROUGH = FieldKind()
CUSTOM = Custom()
REGISTRY: dict[str, FieldKind] = {
    "summary": PlainText(),
    "description": RichText(),
    "environment": RichText(),
    "comment": RichText(),
    "assignee": User(),
    "reporter": User(),
    "priority": NamedOption(),
    "resolution": NamedOption(),
    "issuetype": IssueType(),
    "status": Status(),
    "labels": Labels(),
    "duedate": Date(),
    "components": NamedList(),
    "fixVersions": NamedList(),
    "versions": NamedList(),
}


def kind_of(field_id: str) -> FieldKind:
    if field_id in REGISTRY:
        return REGISTRY[field_id]
    return CUSTOM if field_id.startswith("customfield_") else PASS_THROUGH


def without_nul(value: Any) -> Any:
    """`value` with every NUL character removed from its strings (keys too).

    PostgreSQL stores no NUL in text or JSON; a value read from Jira may carry one. Canonical
    values never do, so what is stored is what is compared and what is written.
    """
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


# Jira Service Management keeps a comment internal by this comment property.
_SD_PUBLIC_PROPERTY = "sd.public.comment"


def comment_restricted(comment: Any) -> bool:
    """Is a comment (REST or webhook shape) kept from some of its site's users?

    Restricted to a role or group (`visibility`), or a Jira Service Management internal
    comment (`jsdPublic: false`, or its `sd.public.comment` property says internal). Such a
    comment stays on its site unless the organization allows copying it.
    """
    if not isinstance(comment, dict):
        return False
    if comment.get("visibility"):
        return True
    if comment.get("jsdPublic") is False:
        return True
    for prop in comment.get("properties") or ():
        if isinstance(prop, dict) and prop.get("key") == _SD_PUBLIC_PROPERTY:
            value = prop.get("value")
            if isinstance(value, dict) and value.get("internal"):
                return True
    return False


def read(field_id: str, fields: dict) -> Any:
    """The canonical value of one field from a REST issue's (or a webhook's) `fields`."""
    return without_nul(kind_of(field_id).read(fields.get(field_id)))


def same(field_id: str, a: Any, b: Any) -> bool:
    return kind_of(field_id).same(a, b)


def fingerprint(field_id: str, value: Any) -> str:
    """What identifies a value of a field on either site (for echo locks and comment hashes)."""
    text = kind_of(field_id).text(value)
    return hashlib.sha256(f"{field_id}\0{text}".encode()).hexdigest()[:40]
