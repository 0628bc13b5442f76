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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from jiraapi import adf
from jiraapi.client import CLOUD
from jiraapi.events import FieldChange

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# Wiki macros a site adds when it renders rich text it keeps as ADF (Cloud renders a panel as
# {panel:bgColor=...}...{panel} in REST v2 and webhooks): markup, not words.
_WIKI_MACRO = re.compile(r"\{(?:panel|code|noformat|quote|color|expand)(?::[^}]*)?\}", re.I)
# Attributes a site adds to ADF it stores, which say nothing about the content.
_ADF_NOISE = frozenset({"localId"})
EMPTY = (None, "", [])


@dataclass(frozen=True)
class Crossing:
    """How a value crosses from the source site to the target site, for one field pair."""

    forward: dict[str, str]  # the pair's value map, in the direction of travel
    source_flavor: str
    target_flavor: str
    issue_types: dict[str, str]  # the project mapping's issue type map, in the direction of travel
    find_user: Callable[[str], dict | None]  # a target user by e-mail (canonical), or None
    # The organization's user map in the direction of travel (source user id -> target id).
    users: dict[str, str] = field(default_factory=dict)
    # The target's copy of a source issue ({"id", "key"} canonical), or None: not synced.
    resolve_issue: Callable[[dict], dict | None] | None = None


@dataclass(frozen=True)
class Unmatched:
    """A user with no counterpart on the target site: not in the user map (nor the field
    pair's value map), and not found there by e-mail (Jira Cloud usually hides it). The
    organization's policy decides what the target gets (`plan.carried`)."""

    user: dict  # the source user, canonical


@dataclass(frozen=True)
class Unresolved:
    """A parent (or epic) with no copy at the target: the issue above is not synced there
    (out of scope, or not yet). The plan decides what the child gets (`plan.plan`)."""

    issue: dict  # the source's parent, canonical


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
    return _NON_WORD.sub(" ", _WIKI_MACRO.sub(" ", text)).strip().lower()


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and value.get("type") == "doc")


def _rich_form(value: Any) -> Any:
    """Rich text in the form two readings of one value share: ADF without the ids a site
    adds (`localId`), wiki text with LF line ends (Data Center may answer CRLF)."""
    if value in EMPTY:
        return None
    if isinstance(value, str):
        return "\n".join(line.rstrip() for line in value.replace("\r\n", "\n").split("\n"))
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in _ADF_NOISE:
                continue
            v = _rich_form(v) if isinstance(v, dict | list) else v
            if k == "attrs" and not v:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_rich_form(v) for v in value]
    return value


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

    # True: a value absent from the agreed state of a pair made before the field was synced
    # counts as agreed when it is empty (no write for it).
    absent_is_empty = False

    def read(self, raw: Any) -> Any:
        return raw

    def read_fields(self, fields: dict, field_id: str) -> Any:
        """The value from a REST issue's (or a webhook's) `fields` (one key, for most kinds)."""
        return self.read(fields.get(field_id))

    def reads(self, field_id: str) -> tuple[str, ...]:
        """The REST fields `read_fields` needs (what to ask a search or a GET for)."""
        return (field_id,)

    def write(self, value: Any, flavor: str) -> Any:
        return value

    def payload(self, field_id: str, value: Any, flavor: str) -> dict[str, Any]:
        """The create/edit `fields` entries that set this value (one, for most kinds)."""
        return {field_id: self.write(value, flavor)}

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

    def same(self, a: Any, b: Any) -> bool:
        return _rich_form(a) == _rich_form(b)

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


# Jira refuses a multi-line text value (description, textarea, comment) over this length.
TEXT_LIMIT = 32767
_TRUNCATED = "… [truncated by Jira sync: {over:,} characters over Jira's 32,767 limit]"


def text_length(value: Any) -> int:
    """A text value's length as Jira measures it: a string's characters, ADF's text nodes."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        own = len(value["text"]) if isinstance(value.get("text"), str) else 0
        return own + sum(text_length(n) for n in value.get("content") or [])
    if isinstance(value, list):
        return sum(text_length(n) for n in value)
    return 0


def _cut_adf(node: Any, budget: list[int]) -> Any:
    """`node` keeping at most `budget[0]` characters of text (in order); None once spent."""
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("text"), str):
        if budget[0] <= 0:
            return None
        text = node["text"][: budget[0]]
        budget[0] -= len(text)
        return {**node, "text": text}
    if "content" not in node:
        return node if budget[0] > 0 else None
    kept = [c for c in (_cut_adf(n, budget) for n in node.get("content") or []) if c is not None]
    if not kept and node.get("type") != "doc":
        return None
    return {**node, "content": kept}


def fit_text(value: Any) -> tuple[Any, int]:
    """A text value cut to fit Jira's limit, ended with a visible marker, and by how many
    characters it was over (0: the value fits and is returned as it is)."""
    if not (isinstance(value, str) or (isinstance(value, dict) and value.get("type") == "doc")):
        return value, 0
    over = text_length(value) - TEXT_LIMIT
    if over <= 0:
        return value, 0
    marker = _TRUNCATED.format(over=over)
    # Room for the marker and the line break before it.
    keep = TEXT_LIMIT - len(marker) - 2
    if isinstance(value, str):
        return value[:keep].rstrip() + "\n\n" + marker, over
    doc = _cut_adf(value, [keep])
    note = {"type": "paragraph", "content": [{"type": "text", "text": marker}]}
    return {**doc, "content": [*doc.get("content", []), note]}, over


def user_of(raw: dict | None) -> dict | None:
    """A user in canonical form: one id for both flavors (accountId, name or key).

    A Data Center user also keeps its key when it differs from its name (a user map may
    name either). The e-mail is "" where the site hides it.
    """
    if not raw:
        return None
    user = {
        "id": raw.get("accountId") or raw.get("name") or raw.get("key"),
        "email": raw.get("emailAddress") or "",
        "name": raw.get("displayName") or "",
    }
    if raw.get("key") and raw.get("key") != user["id"]:
        user["key"] = raw["key"]
    return user


def is_user(value: Any) -> bool:
    """A canonical user (as `user_of` makes it)."""
    return isinstance(value, dict) and "id" in value and "email" in value


def cross_user(value: dict | None, crossing: Crossing) -> dict | Unmatched | None:
    """The target's user for a source user: by the organization's user map (by id), then
    the field pair's value map (by id or e-mail), then by e-mail on the target site."""
    if not value:
        return None
    ids = [i for i in (value.get("id"), value.get("key")) if i]
    for key in ids:
        if key in crossing.users:
            return {"id": crossing.users[key], "email": "", "name": ""}
    for key in (*ids, value.get("email")):
        if key and key in crossing.forward:
            return {"id": crossing.forward[key], "email": "", "name": ""}
    email = value.get("email")
    found = crossing.find_user(email) if email else None
    return found or Unmatched(value)


def write_user(value: Any, flavor: str) -> Any:
    if not value:
        return None
    return {"accountId": value["id"]} if flavor == CLOUD else {"name": value["id"]}


class User(FieldKind):
    """A user: by the user maps (organization, then pair), then by e-mail; else unmatched."""

    def read(self, raw: Any) -> Any:
        return user_of(raw)

    def write(self, value: Any, flavor: str) -> Any:
        return write_user(value, flavor)

    def same(self, a: Any, b: Any) -> bool:
        return (a or {}).get("id") == (b or {}).get("id")

    def before(self, change: FieldChange) -> Any:
        return {"id": change.from_value} if change.from_value else None

    def cross(self, value: Any, crossing: Crossing) -> Any:
        return cross_user(value, crossing)


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
            if "accountId" in raw or "key" in raw:  # a user (a Data Center one has a name too)
                return user_of(raw)
            if "value" in raw:
                return {"value": raw["value"]}
            if "name" in raw:
                return {"name": raw["name"]}
        if isinstance(raw, list):
            return [self.read(v) for v in raw]
        return raw

    def write(self, value: Any, flavor: str) -> Any:
        if is_user(value):  # a user picker: by accountId (Cloud) or name (Data Center)
            return write_user(value, flavor)
        if isinstance(value, list) and value and all(is_user(v) for v in value):
            return [write_user(v, flavor) for v in value]
        return value

    def same(self, a: Any, b: Any) -> bool:
        if isinstance(a, dict) and "id" in a:  # a user
            return (a or {}).get("id") == (b or {}).get("id")
        if _is_text(a) and _is_text(b):  # a text or paragraph field (CRLF, localIds)
            return _rich_form(a) == _rich_form(b)
        return a == b

    def text(self, value: Any) -> str:
        if _is_text(value):  # by its words: a paragraph field is ADF in v3, wiki in webhooks
            return _words(value)
        return _generic_text(value)

    def cross(self, value: Any, crossing: Crossing) -> Any:
        if isinstance(value, dict) and value.get("type") == "doc":  # a Cloud paragraph field
            return convert_rich_text(value, crossing.source_flavor, crossing.target_flavor)
        if is_user(value):  # a user picker crosses as the assignee does
            return cross_user(value, crossing)
        if isinstance(value, list) and value and all(is_user(v) for v in value):
            # A multi-user picker: the users with a counterpart (the others stay behind).
            crossed = [cross_user(v, crossing) for v in value]
            return [c for c in crossed if c and not isinstance(c, Unmatched)]
        if isinstance(value, str) and "\n" in value and crossing.target_flavor == CLOUD:
            # Only a paragraph (multi-line) field holds a line break: ADF on Cloud.
            return convert_rich_text(value, crossing.source_flavor, crossing.target_flavor)
        return _mapped(value, crossing.forward)


def epic_link_field() -> str:
    """Data Center's Epic Link custom field (Jira Software): a standard issue's epic."""
    return settings.JIRA_EPIC_LINK_FIELD


def epic_name_field() -> str:
    """Data Center's Epic Name custom field, which Jira requires to create an Epic there."""
    return settings.JIRA_EPIC_NAME_FIELD


class Parent(FieldKind):
    """The issue above this one: a sub-task's parent, or a standard issue's epic.

    Cloud has both in `parent`; Data Center has a sub-task's in `parent` and a standard
    issue's epic in the Epic Link field (the epic's key). Canonical: `{"id", "key",
    "subtask"}` (`subtask`: the child is a sub-task; an Epic Link gives no id) or None. It
    crosses to the target's copy of that issue (the pair's IssueLink), or `Unresolved`.
    """

    absent_is_empty = True

    def read_fields(self, fields: dict, field_id: str) -> Any:
        subtask = bool((fields.get("issuetype") or {}).get("subtask"))
        raw = fields.get("parent")
        if isinstance(raw, dict) and (raw.get("id") or raw.get("key")):
            return {
                "id": str(raw.get("id") or ""),
                "key": str(raw.get("key") or ""),
                "subtask": subtask,
            }
        epic = fields.get(epic_link_field())
        if isinstance(epic, str) and epic.strip() and not subtask:
            return {"id": "", "key": epic.strip(), "subtask": False}
        return None

    def read(self, raw: Any) -> Any:
        return self.read_fields({"parent": raw}, "parent")

    def reads(self, field_id: str) -> tuple[str, ...]:
        return ("parent", "issuetype", epic_link_field())

    def write(self, value: Any, flavor: str) -> Any:
        return {"key": value["key"]} if value else None

    def payload(self, field_id: str, value: Any, flavor: str) -> dict[str, Any]:
        """Cloud: `parent` (an epic, or a sub-task's parent). Data Center: a sub-task's
        `parent`, a standard issue's Epic Link (the epic's key)."""
        if flavor == CLOUD or (value or {}).get("subtask"):
            # Cloud removes a parent with an empty object.
            return {"parent": self.write(value, flavor) or {}}
        return {epic_link_field(): value["key"] if value else None}

    def same(self, a: Any, b: Any) -> bool:
        if not a or not b:
            return not a and not b
        if a.get("id") and b.get("id"):
            return a["id"] == b["id"]
        return a.get("key") == b.get("key")

    def text(self, value: Any) -> str:
        return str((value or {}).get("key") or "")

    def before(self, change: FieldChange) -> Any:
        if not (change.from_value or change.from_string):
            return None
        return {"id": change.from_value or "", "key": change.from_string or ""}

    def cross(self, value: Any, crossing: Crossing) -> Any:
        if not value:
            return None
        found = crossing.resolve_issue(value) if crossing.resolve_issue else None
        if not found:
            return Unresolved(value)
        return {"id": found["id"], "key": found["key"], "subtask": bool(value.get("subtask"))}


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
    "parent": Parent(),
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


def fit(field_id: str, value: Any) -> tuple[Any, int]:
    """A value for the target cut to Jira's text limit (`fit_text`), for text kinds only."""
    if isinstance(kind_of(field_id), RichText | Custom):
        return fit_text(value)
    return value, 0


def rest_fields(names: Iterable[str]) -> list[str]:
    """The REST fields to ask for so that `read` can read each of `names`."""
    return sorted({rest for name in names for rest in kind_of(name).reads(name)})


def read(field_id: str, fields: dict) -> Any:
    """The canonical value of one field from a REST issue's (or a webhook's) `fields`."""
    return without_nul(kind_of(field_id).read_fields(fields, field_id))


def same(field_id: str, a: Any, b: Any) -> bool:
    return kind_of(field_id).same(a, b)


def fingerprint(field_id: str, value: Any) -> str:
    """What identifies a value of a field on either site (for echo locks and comment hashes)."""
    text = kind_of(field_id).text(value)
    return hashlib.sha256(f"{field_id}\0{text}".encode()).hexdigest()[:40]
