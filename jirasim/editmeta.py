"""Edit screens: which fields an issue's edit screen shows (``GET issue/{key}/editmeta``),
and Jira's 400 for an edit naming a field that is not on it.

The option ``edit_screen_hidden_fields`` takes a field off the screen: ``"field"`` in every
project, ``"PROJ/field"`` in one project, ``"PROJ/Issue Type/field"`` for one issue type.
"""

from __future__ import annotations

from typing import Any

from .model import CUSTOM_FIELDS, CUSTOM_SCHEMA, EDITABLE, ISSUE_TYPES, PRIORITIES, SYSTEM_FIELDS
from .parse import CANNOT_SET

# Set/add/remove operations Jira lists per field in editmeta.
_OPERATIONS = {
    "labels": ["add", "set", "remove"],
    "components": ["add", "set", "remove"],
    "fixVersions": ["set", "add", "remove"],
    "versions": ["set", "add", "remove"],
    "comment": ["add", "edit", "remove"],
}
_ITEMS = {"labels": "string", "components": "component", "fixVersions": "version"}
_ITEMS["versions"] = "version"


class EditMetaMixin:
    """Edit screens (mixed into :class:`jirasim.store.Store`)."""

    def screen_hides(self, issue: dict, fid: str) -> bool:
        """Is `fid` off the edit screen of `issue`'s project and issue type?"""
        hidden = self.options.edit_screen_hidden_fields
        if not hidden:
            return False
        project = issue["project"]
        type_name = next((t[1] for t in ISSUE_TYPES if t[0] == issue["issuetype"]), "")
        for entry in hidden:
            parts = str(entry).split("/")
            if parts[-1] != fid:
                continue
            if len(parts) == 1:
                return True
            if parts[0].upper() != project:
                continue
            if len(parts) == 2 or parts[1].lower() == type_name.lower():
                return True
        return False

    def screen_errors(self, issue: dict, names: Any) -> dict[str, str]:
        """Jira's per-field 400 text for each named field not on the issue's edit screen."""
        return {fid: CANNOT_SET.format(fid) for fid in names if self.screen_hides(issue, fid)}

    def editmeta_json(self, issue: dict) -> dict:
        proj = self.project_of(issue)
        out: dict[str, dict] = {}
        names = [f for f in SYSTEM_FIELDS if f in EDITABLE or f == "comment"]
        names += list(CUSTOM_FIELDS)
        for fid in names:
            if fid == "parent" or self.screen_hides(issue, fid):
                continue
            out[fid] = self._field_meta(fid, proj)
        return {"fields": out}

    def _field_meta(self, fid: str, proj: dict) -> dict:
        if fid in CUSTOM_FIELDS:
            name, kind, options = CUSTOM_FIELDS[fid]
            stype, custom = CUSTOM_SCHEMA[kind]
            meta: dict[str, Any] = {
                "required": False,
                "schema": {"type": stype, "custom": custom, "customId": int(fid.split("_")[1])},
                "name": name,
                "key": fid,
                "operations": ["set"],
            }
            if kind == "option":
                meta["allowedValues"] = [
                    {
                        "self": f"{self.base_url}/rest/api/2/customFieldOption/{oid}",
                        "value": label,
                        "id": oid,
                    }
                    for oid, label in options
                ]
            return meta
        name, stype = SYSTEM_FIELDS[fid][0], SYSTEM_FIELDS[fid][1]
        schema: dict[str, Any] = {"type": stype, "system": fid}
        if fid in _ITEMS:
            schema["items"] = _ITEMS[fid]
        meta = {
            "required": fid in ("summary", "issuetype", "reporter"),
            "schema": schema,
            "name": name,
            "key": fid,
            "operations": _OPERATIONS.get(fid, ["set"]),
        }
        if fid == "priority":
            meta["allowedValues"] = [self.priority_json(p[0]) for p in PRIORITIES]
        elif fid == "issuetype":
            meta["allowedValues"] = [self.issuetype_json(t[0]) for t in ISSUE_TYPES if not t[3]]
        elif fid == "components":
            meta["allowedValues"] = [self.component_json(c) for c in proj["components"]]
        elif fid in ("fixVersions", "versions"):
            meta["allowedValues"] = [self.version_json(proj, v) for v in proj["versions"]]
        elif fid in ("assignee", "reporter"):
            meta["autoCompleteUrl"] = f"{self.base_url}/rest/api/2/user/search?query="
        return meta
