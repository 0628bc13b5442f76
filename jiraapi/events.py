"""A Jira webhook delivery, parsed once: the events the sync handles, and `JiraEvent`.

Cloud and Data Center bodies differ (Data Center's comment events carry no `issue`, its
changelog items often no `fieldId`); `JiraEvent.parse` reads both into one shape and never
raises on a dict: a member of the wrong type is treated as absent. Plain Python, no Django.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

ISSUE_CREATED = "jira:issue_created"
ISSUE_UPDATED = "jira:issue_updated"
ISSUE_DELETED = "jira:issue_deleted"
COMMENT_CREATED = "comment_created"
COMMENT_UPDATED = "comment_updated"
COMMENT_DELETED = "comment_deleted"
# A link between two issues made or unmade (both flavors send these; Jira Cloud also sends
# `jira:issue_updated` with a `Link` changelog item for each of the two issues).
ISSUELINK_CREATED = "issuelink_created"
ISSUELINK_DELETED = "issuelink_deleted"
WORKLOG_CREATED = "worklog_created"
WORKLOG_UPDATED = "worklog_updated"
WORKLOG_DELETED = "worklog_deleted"
# The events the sync handles (a webhook must send us these); the only list of them.
WEBHOOK_EVENTS = (
    ISSUE_CREATED,
    ISSUE_UPDATED,
    ISSUE_DELETED,
    COMMENT_CREATED,
    COMMENT_UPDATED,
    COMMENT_DELETED,
    ISSUELINK_CREATED,
    ISSUELINK_DELETED,
    WORKLOG_CREATED,
    WORKLOG_UPDATED,
    WORKLOG_DELETED,
)
_LINK_ACTIONS = {ISSUELINK_CREATED: "created", ISSUELINK_DELETED: "deleted"}
# Worklog events carry the worklog only (naming its issue by `issueId`): no issue, no user.
_WORKLOG_ACTIONS = {
    WORKLOG_CREATED: "created",
    WORKLOG_UPDATED: "updated",
    WORKLOG_DELETED: "deleted",
}
# The comment events, and Data Center's `jira:issue_updated` that names one in its type.
_COMMENT_ACTIONS = {
    COMMENT_CREATED: "created",
    COMMENT_UPDATED: "updated",
    COMMENT_DELETED: "deleted",
}
_COMMENT_TYPE_NAMES = {
    "issue_commented": "created",
    "issue_comment_edited": "updated",
    "issue_comment_deleted": "deleted",
}
_COMMENT_SELF = re.compile(r"/issue/(\d+)/comment/")
_CUSTOM_ID = re.compile(r"customfield_\d+")
_JIRA_ID = re.compile(r"[0-9]{1,18}")

# Changelog `field` names (Data Center items often carry no `fieldId`, and Cloud items name
# fields by their display name) and ids in another case, lower-cased -> the field id.
_FIELD_IDS = {
    "summary": "summary",
    "description": "description",
    "environment": "environment",
    "assignee": "assignee",
    "reporter": "reporter",
    "priority": "priority",
    "status": "status",
    "resolution": "resolution",
    "labels": "labels",
    "duedate": "duedate",
    "due date": "duedate",
    "issuetype": "issuetype",
    "issue type": "issuetype",
    "components": "components",
    "component": "components",
    "fixversions": "fixVersions",
    "fix version": "fixVersions",
    "versions": "versions",
    "version": "versions",
    "attachment": "attachment",
    "issuelinks": "issuelinks",
    "link": "issuelinks",
    "parent": "parent",
    "issueparentassociation": "parent",
    "epic link": "parent",  # Data Center (Jira Software): a standard issue's epic
    "key": "key",
    "issuekey": "key",  # Cloud's fieldId of the `Key` item an issue move records
    "project": "project",
    "security": "security",
    "timeoriginalestimate": "timeoriginalestimate",
    "timeestimate": "timeestimate",
    "timespent": "timespent",
}

# A delivery's timestamp outside [2000-01-01, now + 1 day] is not believed.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_AHEAD_SECONDS = 86400
# A number at least this large is in milliseconds (as seconds it would be past the year 5000).
_MILLISECONDS_FROM = 1e11

# Real webhook bodies nest about 10 levels deep; anything deeper than this is refused before
# the decoder sees it (100,000 nested brackets would otherwise exhaust its recursion).
MAX_JSON_DEPTH = 64
# Strings (which may hold brackets) and then everything that is not a bracket, removed in C.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPENING = frozenset(b"[{")


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `body` nests arrays and objects deeper than `limit`, found
    without decoding it (stops at the first level past the limit)."""
    depth = 0
    for byte in _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", body)):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


@dataclass(frozen=True)
class FieldChange:
    """One changelog item."""

    field: str  # the field id, the same for Cloud and Data Center; see `_field_id`
    from_value: str | None  # "from"
    from_string: str | None  # "fromString"
    to_value: str | None  # "to"
    to_string: str | None  # "toString"
    custom: bool  # the item's fieldtype is "custom"
    identified: bool  # False: a custom field without fieldId (we cannot tell which it is)


@dataclass(frozen=True)
class Actor:
    """Who caused the event (a Cloud user has an accountId, a Data Center one a name/key)."""

    account_id: str
    name: str
    key: str
    display_name: str
    email: str

    @property
    def id(self) -> str:
        return self.account_id or self.name or self.key


@dataclass(frozen=True)
class CommentRef:
    """The comment a comment event is about."""

    action: str  # "created" | "updated" | "deleted"
    id: str
    body: Any  # ADF dict (Cloud v3) or wiki string, as in the payload; None if absent
    raw: Mapping  # the comment object as given (read-only)


@dataclass(frozen=True)
class LinkRef:
    """The issue link an `issuelink_*` event is about (`source` shows the type's outward
    description: "source blocks destination")."""

    action: str  # "created" | "deleted"
    id: str
    source_issue_id: str
    destination_issue_id: str
    type_name: str


@dataclass(frozen=True)
class WorklogRef:
    """The worklog a worklog event is about."""

    action: str  # "created" | "updated" | "deleted"
    id: str
    raw: Mapping  # the worklog object as given (read-only)


@dataclass(frozen=True)
class JiraEvent:
    """One webhook delivery, parsed."""

    kind: str  # the payload's webhookEvent, "" if none
    handled: bool  # kind is one of WEBHOOK_EVENTS
    issue_id: str  # also from a comment's `self` link when the payload has no issue
    issue_key: str
    project_key: str
    issue_fields: Mapping  # the issue's `fields` ({} if none), read-only
    comment: CommentRef | None
    actor: Actor | None
    timestamp: datetime | None  # aware UTC; None when missing or not believable
    changes: tuple[FieldChange, ...]
    event_type_name: str = ""  # issue_event_type_name (e.g. "issue_commented"), "" if none
    link: LinkRef | None = None  # issuelink_created / issuelink_deleted
    worklog: WorklogRef | None = None  # worklog_* events only

    @classmethod
    def parse(cls, payload: Mapping) -> JiraEvent:
        """Read a webhook body; never raises on a dict (or any other mapping)."""
        if not isinstance(payload, Mapping):
            payload = {}
        kind = _text(payload.get("webhookEvent"))
        type_name = _text(payload.get("issue_event_type_name"))
        issue = _mapping(payload.get("issue"))
        fields = _mapping(issue.get("fields"))
        comment_raw = payload.get("comment")
        comment = _comment(kind, type_name, comment_raw)
        issue_id = _text(issue.get("id"))
        if not issue_id and isinstance(comment_raw, Mapping):
            match = _COMMENT_SELF.search(_text(comment_raw.get("self")))
            issue_id = match.group(1) if match else ""
        worklog = _worklog(kind, payload.get("worklog"))
        if not issue_id and worklog is not None:
            issue_id = _text(worklog.raw.get("issueId"))
        actor = _actor(payload.get("user"))
        if actor is None and kind in _COMMENT_ACTIONS and isinstance(comment_raw, Mapping):
            actor = _actor(comment_raw.get("updateAuthor")) or _actor(comment_raw.get("author"))
        if actor is None and worklog is not None:
            actor = _actor(worklog.raw.get("updateAuthor")) or _actor(worklog.raw.get("author"))
        items = _mapping(payload.get("changelog")).get("items")
        changes = tuple(
            _change(item)
            for item in (items if isinstance(items, list) else ())
            if isinstance(item, Mapping)
        )
        return cls(
            kind=kind,
            handled=kind in WEBHOOK_EVENTS,
            issue_id=issue_id,
            issue_key=_text(issue.get("key")),
            project_key=_text(_mapping(fields.get("project")).get("key")),
            issue_fields=MappingProxyType(dict(fields)),
            comment=comment,
            actor=actor,
            timestamp=_timestamp(payload.get("timestamp")),
            changes=changes,
            event_type_name=type_name,
            link=_link(kind, payload.get("issueLink")),
            worklog=worklog,
        )

    @classmethod
    def from_body(cls, body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> JiraEvent:
        """Parse a delivery's body; ValueError (or UnicodeDecodeError) if not a JSON object, or
        one nested deeper than `max_depth`."""
        if json_depth_exceeds(body, max_depth):
            raise ValueError("the body is nested too deeply")
        try:
            payload = json.loads(body.decode("utf-8"))
        except RecursionError:  # nested too deep for the decoder
            raise ValueError("the body is nested too deeply") from None
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        return cls.parse(payload)

    @property
    def is_delete(self) -> bool:
        return self.kind == ISSUE_DELETED

    @property
    def is_create(self) -> bool:
        return self.kind == ISSUE_CREATED

    def change(self, field: str) -> FieldChange | None:
        """The first changelog item about `field` (a field id), if any."""
        return next((c for c in self.changes if c.field == field), None)

    @property
    def all_changes_identified(self) -> bool:
        return all(c.identified for c in self.changes)


# --- reading members -------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    """A string member, or a number given for one; "" for anything else."""
    value = _scalar(value)
    return "" if value is None else value


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    return None


def field_id_of(item: Mapping) -> str:
    """The field id a changelog item (webhook or REST history) is about."""
    return _field_id(_mapping(item))


def _field_id(item: Mapping) -> str:
    """The id of the field a changelog item names.

    A `fieldId` that is a custom field id is kept; otherwise the `fieldId` (or, without one,
    the display name in `field`) is looked up in `_FIELD_IDS`, and lower-cased if unknown.
    """
    given = _text(item.get("fieldId")).strip()
    if _CUSTOM_ID.fullmatch(given):
        return given
    name = (given or _text(item.get("field"))).strip().lower()
    return _FIELD_IDS.get(name, name)


def _change(item: Mapping) -> FieldChange:
    custom = item.get("fieldtype") == "custom"
    field = _field_id(item)
    return FieldChange(
        field=field,
        from_value=_scalar(item.get("from")),
        from_string=_scalar(item.get("fromString")),
        to_value=_scalar(item.get("to")),
        to_string=_scalar(item.get("toString")),
        custom=custom,
        # A custom item without `fieldId` is known only by a name `_FIELD_IDS` knows.
        identified=not (custom and not _text(item.get("fieldId")).strip())
        or _text(item.get("field")).strip().lower() in _FIELD_IDS,
    )


def _comment(kind: str, type_name: str, raw: Any) -> CommentRef | None:
    action = _COMMENT_ACTIONS.get(kind)
    if action is None and kind == ISSUE_UPDATED:
        action = _COMMENT_TYPE_NAMES.get(type_name)
    if action is None or not isinstance(raw, Mapping):
        return None
    return CommentRef(
        action=action,
        id=_text(raw.get("id")),
        body=raw.get("body"),
        raw=MappingProxyType(dict(raw)),
    )


def _link(kind: str, raw: Any) -> LinkRef | None:
    action = _LINK_ACTIONS.get(kind)
    if action is None or not isinstance(raw, Mapping):
        return None
    link = LinkRef(
        action=action,
        id=_text(raw.get("id")),
        source_issue_id=_text(raw.get("sourceIssueId")),
        destination_issue_id=_text(raw.get("destinationIssueId")),
        type_name=_text(_mapping(raw.get("issueLinkType")).get("name")),
    )
    ids = (link.id, link.source_issue_id, link.destination_issue_id)
    if not all(_JIRA_ID.fullmatch(x) for x in ids) or not _printable(link.type_name):
        return None  # Jira's ids are numbers and its type names text: not a link we can use
    return link


def _printable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return text.isprintable()


def _worklog(kind: str, raw: Any) -> WorklogRef | None:
    action = _WORKLOG_ACTIONS.get(kind)
    if action is None or not isinstance(raw, Mapping):
        return None
    return WorklogRef(action=action, id=_text(raw.get("id")), raw=MappingProxyType(dict(raw)))


def _actor(user: Any) -> Actor | None:
    if not isinstance(user, Mapping):
        return None
    actor = Actor(
        account_id=_text(user.get("accountId")),
        name=_text(user.get("name")),
        key=_text(user.get("key")),
        display_name=_text(user.get("displayName")),
        email=_text(user.get("emailAddress")),
    )
    return actor if actor.id else None


def _timestamp(value: Any) -> datetime | None:
    """Milliseconds (Jira's) or seconds since the epoch -> aware UTC, if believable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    latest = time.time() + _AHEAD_SECONDS
    scale = 1000 if value >= _MILLISECONDS_FROM else 1
    # Compared before any arithmetic: a huge int cannot overflow, NaN compares False.
    if not (_EARLIEST * scale <= value <= latest * scale):
        return None
    if isinstance(value, int):
        whole, rest = divmod(value, scale)
        return datetime.fromtimestamp(whole, tz=UTC) + timedelta(milliseconds=rest)
    return datetime.fromtimestamp(value / scale, tz=UTC)
