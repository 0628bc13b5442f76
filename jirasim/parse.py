"""Parsing request bodies into stored values: field input, update operations, comment bodies.

REST v3 text arrives as ADF and is stored as wiki markup; REST v2 text is stored as sent.
Invalid input raises :class:`ApiError` (400) with Jira's per-field messages.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from . import adf
from .errors import ApiError
from .model import (
    CUSTOM_FIELDS,
    DC_AGILE_FIELDS,
    DC_EPIC_LINK,
    DEFAULT_PRIORITY,
    EPIC_TYPE,
    ISSUE_TYPES,
    PRIORITIES,
)

CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
_MULTI = ("labels", "components", "fixVersions", "versions")
_LF = re.compile(r"\r?\n")
# Jira refuses a multi-line text field (description, textarea, comment) over this length.
TEXT_LIMIT = 32767
# Rich text fields (ADF in REST v3): their given ADF is kept on a site with ``store_adf``.
RICH_FIELDS = ("description", "environment") + tuple(
    fid for fid, (_, kind, _) in CUSTOM_FIELDS.items() if kind == "textarea"
)


class ParseMixin:
    """Turns REST input into stored values (mixed into :class:`jirasim.store.Store`)."""

    def _user_ref(self, value: Any, fid: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError(400, errors={fid: "data was not an object"})
        # Cloud identifies people by accountId only (names were removed for GDPR); Data
        # Center by username (or user key).
        if self.cloud:
            ident = value.get("accountId") or value.get("id")
            if ident is None and (value.get("name") or value.get("emailAddress")):
                raise ApiError(400, errors={fid: "Specify the user by accountId."})
        else:
            ident = value.get("name") or value.get("key")
        if ident in (None, "", "-1") and fid == "assignee":
            return None
        u = self.find_user(ident)
        if u is not None and self.cloud and u["accountId"] != ident:
            u = None
        if u is not None and not self.cloud and ident not in (u["name"], u["key"]):
            u = None
        if u is None:
            msg = (
                "Specified user does not exist or you do not have required permissions"
                if self.cloud
                else f"User '{ident}' does not exist."
            )
            raise ApiError(400, errors={fid: msg})
        return u["accountId"]

    def _keeps_adf(self, version: str) -> bool:
        """Does this site keep rich text as the ADF it was given (Cloud, ``store_adf``)?"""
        return self.cloud and version == "3" and bool(self.options.store_adf)

    def kept_adf(self, value: Any, version: str) -> dict | None:
        """The ADF to keep as given (localIds, mentions, marks, panels), if the site does."""
        if self._keeps_adf(version) and adf.is_adf(value):
            return copy.deepcopy(value)
        return None

    def _line_ends(self, text: str) -> str:
        """Data Center with ``crlf``: text comes back with CRLF line ends."""
        if self.cloud or not self.options.crlf:
            return text
        return _LF.sub("\r\n", text)

    def _check_length(self, length: int, fid: str) -> None:
        """Jira's limit on multi-line text (Data Center's may be raised or lifted)."""
        limit = TEXT_LIMIT if self.cloud else self.options.dc_text_limit
        if limit and length > limit:
            raise ApiError(
                400,
                errors={
                    fid: "The entered text is too long. It exceeds the allowed limit of "
                    f"{limit:,} characters."
                },
            )

    def _text_in(self, value: Any, fid: str, version: str) -> str | None:
        if value is None:
            return None
        if version == "3":
            if not adf.validate_adf(value):
                raise ApiError(
                    400,
                    errors={
                        fid: "Operation value must be an Atlassian Document "
                        "(see the Atlassian Document Format)"
                    },
                )
            self._check_length(adf.text_length(value), fid)
            return adf.adf_to_wiki(value, panels=self._keeps_adf(version))
        if not isinstance(value, str):
            raise ApiError(400, errors={fid: "Operation value must be a string"})
        self._check_length(len(value), fid)
        return self._line_ends(value)

    def _named_ref(self, value: Any, fid: str, table: list[tuple], msg: str) -> str:
        if not isinstance(value, dict):
            raise ApiError(400, errors={fid: msg})
        for row in table:
            if ("id" in value and str(value["id"]) == row[0]) or (
                "name" in value and str(value["name"]).lower() == row[1].lower()
            ):
                return row[0]
        raise ApiError(400, errors={fid: msg})

    def _list_refs(self, value: Any, fid: str, items: list[dict], label: str) -> list[str]:
        """Components / versions by `{"id"}` or `{"name"}` -> their ids in this project.

        With distinct ids per site (``strict_ids``) a reference with an id is found by that
        id alone, as in Jira: another site's id is refused (400) even if its name is here.
        """
        if not isinstance(value, list):
            raise ApiError(400, errors={fid: "data was not an array"})
        out = []
        for ref in value:
            found = None
            given_id = ref.get("id") if isinstance(ref, dict) else None
            for it in items:
                if not isinstance(ref, dict):
                    continue
                if self.strict_ids and given_id is not None:
                    if str(given_id) == it["id"]:
                        found = it["id"]
                elif str(ref.get("id")) == it["id"] or ref.get("name") == it["name"]:
                    found = it["id"]
            if found is None:
                if self.strict_ids and given_id is not None:
                    raise ApiError(400, errors={fid: f"{label} id '{given_id}' is not valid"})
                name = ref.get("name") or ref.get("id") if isinstance(ref, dict) else ref
                raise ApiError(400, errors={fid: f"{label} name '{name}' is not valid"})
            out.append(found)
        return out

    def parse_field(self, fid: str, value: Any, version: str, proj: dict) -> Any:
        """Turn a REST field value into the stored value, or raise ApiError(400)."""
        if fid == "summary":
            return _parse_summary(value)
        if fid in ("description", "environment"):
            return self._text_in(value, fid, version)
        if fid == "issuetype":
            return self._named_ref(value, fid, ISSUE_TYPES, "The issue type selected is invalid.")
        if fid == "priority":
            if value is None:
                return DEFAULT_PRIORITY
            return self._named_ref(value, fid, PRIORITIES, "The priority selected is invalid.")
        if fid == "labels":
            return _parse_labels(value)
        if fid in ("assignee", "reporter"):
            if fid == "reporter" and value is None:
                raise ApiError(400, errors={fid: "Reporter is required."})
            return self._user_ref(value, fid)
        if fid == "duedate":
            if value is None or value == "":
                return None
            return _parse_date(value, fid)
        if fid == "components":
            return self._list_refs(value, fid, proj["components"], "Component")
        if fid in ("fixVersions", "versions"):
            return self._list_refs(value, fid, proj["versions"], "Version")
        if fid == "parent":
            return self._parent_ref(value, fid)
        if fid in DC_AGILE_FIELDS and not self.cloud:
            return self._agile_field(fid, value)
        if fid in CUSTOM_FIELDS:
            return self._parse_custom(fid, value, version)
        raise ApiError(400, errors={fid: CANNOT_SET.format(fid)})

    def _parent_ref(self, value: Any, fid: str) -> str | None:
        # Cloud removes a parent with `"parent": {}` (also null, or `{"none": true}`).
        if value is None or value == {} or (isinstance(value, dict) and value.get("none")):
            return None
        if not isinstance(value, dict):
            raise ApiError(400, errors={fid: "Could not find issue by id or key."})
        ident = value.get("key") or value.get("id")
        try:
            return self.get_issue(str(ident))["id"]
        except ApiError:
            raise ApiError(400, errors={fid: "Could not find issue by id or key."}) from None

    def _agile_field(self, fid: str, value: Any) -> str | None:
        """Data Center's Epic Link (the epic's key; stored as the epic's id) or Epic Name."""
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ApiError(400, errors={fid: "Operation value must be a string"})
        if fid != DC_EPIC_LINK:
            if len(value) > 255:
                raise ApiError(
                    400, errors={fid: "Epic Name is too long. Please enter a shorter name."}
                )
            return value
        try:
            epic = self.get_issue(value.strip())
        except ApiError:
            epic = None
        if epic is None or epic["issuetype"] != EPIC_TYPE:
            raise ApiError(400, errors={fid: f"Issue '{value}' is not an epic."})
        return epic["id"]

    def _parse_custom(self, fid: str, value: Any, version: str) -> Any:
        name, kind, options = CUSTOM_FIELDS[fid]
        if value is None:
            return None
        if kind == "text":
            if not isinstance(value, str):
                raise ApiError(400, errors={fid: "Operation value must be a string"})
            if len(value) > 255:
                raise ApiError(
                    400,
                    errors={
                        fid: "The entered text is too long. It exceeds "
                        "the allowed limit of 255 characters."
                    },
                )
            return value
        if kind == "textarea":
            return self._text_in(value, fid, version)
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ApiError(400, errors={fid: "Operation value must be a number"})
            return float(value)
        if kind == "date":
            return _parse_date(value, fid)
        if kind == "option":
            if isinstance(value, dict):
                for oid, label in options:
                    if str(value.get("id")) == oid or value.get("value") == label:
                        return oid
            shown = value.get("value") if isinstance(value, dict) else value
            raise ApiError(400, errors={fid: f"Option value '{shown}' is not valid"})
        raise ApiError(400, errors={fid: CANNOT_SET.format(fid)})

    def _apply_update_ops(self, issue: dict | None, update: dict, version: str, proj: dict) -> dict:
        """Fold ``update: {field: [{set|add|remove: v}]}`` into plain field values."""
        out: dict[str, Any] = {}
        for fid, ops in (update or {}).items():
            if fid == "comment":
                continue
            if not isinstance(ops, list):
                raise ApiError(400, errors={fid: "data was not an array"})
            current: Any = None
            if issue is not None:
                current = {
                    "labels": list(issue["labels"]),
                    "components": [{"id": c} for c in issue["components"]],
                    "fixVersions": [{"id": v} for v in issue["fixVersions"]],
                    "versions": [{"id": v} for v in issue["versions"]],
                }.get(fid)
            for op in ops:
                if not isinstance(op, dict) or len(op) != 1:
                    raise ApiError(400, errors={fid: "Operation must be one of set, add, remove"})
                verb, val = next(iter(op.items()))
                if verb == "set":
                    current = val
                elif verb in ("add", "remove") and fid in _MULTI:
                    current = list(current or [])
                    if verb == "add":
                        current.append(val)
                    else:
                        current = self._remove_value(current, val, fid, proj)
                else:
                    raise ApiError(
                        400, errors={fid: f"Field '{fid}' does not support operation '{verb}'"}
                    )
            out[fid] = current
        return out

    def _remove_value(self, current: list, val: Any, fid: str, proj: dict) -> list:
        """One ``remove`` operation on a multi-valued field (by value, id or name)."""
        current = [
            x
            for x in current
            if x != val
            and not (
                isinstance(x, dict)
                and isinstance(val, dict)
                and (
                    (x.get("id") and str(x.get("id")) == str(val.get("id")))
                    or (x.get("name") and x.get("name") == val.get("name"))
                )
            )
        ]
        if fid != "labels":
            # names in the remove request must resolve to ids first
            ids = self._list_refs(
                [val],
                fid,
                proj["components"] if fid == "components" else proj["versions"],
                "Item",
            )
            current = [x for x in current if str(x.get("id")) not in ids]
        return current

    def _comment_body(self, body: Any, version: str) -> str:
        if version == "3":
            if not adf.validate_adf(body):
                raise ApiError(
                    400,
                    errors={"comment": "Comment body is not a valid Atlassian Document"},
                )
            self._check_length(adf.text_length(body), "comment")
            text = adf.adf_to_wiki(body, panels=self._keeps_adf(version)) or ""
        else:
            if not isinstance(body, str):
                raise ApiError(400, errors={"comment": "Operation value must be a string"})
            self._check_length(len(body), "comment")
            text = self._line_ends(body)
        if not text.strip():
            raise ApiError(400, errors={"comment": "Comment body can not be empty!"})
        return text


def _parse_summary(value: Any) -> str:
    fid = "summary"
    if not isinstance(value, str):
        raise ApiError(400, errors={fid: "Operation value must be a string"})
    if not value.strip():
        raise ApiError(400, errors={fid: "You must specify a summary of the issue."})
    if len(value) > 255:
        raise ApiError(400, errors={fid: "Summary must be less than 255 characters."})
    return value.replace("\n", " ")


def _parse_labels(value: Any) -> list[str]:
    fid = "labels"
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ApiError(400, errors={fid: "data was not an array"})
    for lab in value:
        if " " in lab:
            raise ApiError(
                400,
                errors={fid: "The label '" + lab + "' contains spaces which is invalid."},
            )
    return sorted(set(value), key=value.index)


def _parse_date(value: Any, fid: str) -> str:
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, errors={fid: f"Error parsing date string: {value}"}) from None
    return str(value)
