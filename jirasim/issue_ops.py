"""Issue operations: create, edit, assign and delete, each recorded and emitted as events."""

from __future__ import annotations

import copy
from typing import Any

from .clock import now_ms
from .errors import ApiError
from .model import (
    CUSTOM_FIELDS,
    DC_AGILE_FIELDS,
    DC_EPIC_LINK,
    DC_EPIC_NAME,
    DEFAULT_PRIORITY,
    EDITABLE,
    EPIC_TYPE,
    STATUSES,
    SUBTASK_TYPE,
    hierarchy_level,
)
from .parse import CANNOT_SET, RICH_FIELDS


class IssueOpsMixin:
    """Changes to whole issues (mixed into :class:`jirasim.store.Store`)."""

    def create_issue(self, *, actor: dict, body: dict, version: str) -> dict:
        with self.lock:
            if not isinstance(body, dict):
                raise ApiError(400, ["Can not deserialize instance of IssueBean"])
            fields = dict(body.get("fields") or {})
            errors: dict[str, str] = {}
            proj = self._target_project(fields, errors)
            if errors:
                raise ApiError(400, errors=errors)
            assert proj is not None
            try:
                fields.update(self._apply_update_ops(None, body.get("update") or {}, version, proj))
            except ApiError as e:
                errors.update(e.errors)
            values = self._parse_values(fields, version, proj, errors, parent_settable=True)
            itype = values.get("issuetype")
            self._place(itype, values, errors, creating=True, project=proj["key"])
            if itype == EPIC_TYPE and not self.cloud and not values.get(DC_EPIC_NAME):
                errors[DC_EPIC_NAME] = "Epic Name is required."
            props = body.get("properties") or []
            if not isinstance(props, list) or not all(
                isinstance(p, dict) and "key" in p for p in props
            ):
                errors["properties"] = "Invalid properties"
            if errors:
                raise ApiError(400, errors=errors)
            ts = now_ms()
            issue = self._new_issue(proj, actor, values, props, ts)
            issue["adf"] = {
                fid: kept
                for fid in RICH_FIELDS
                if (kept := self.kept_adf(fields.get(fid), version)) is not None
            }
            # Cloud records the initial values as a changelog and sends it with the event.
            items = self._creation_items(issue)
            hist = (
                {
                    "id": self._next("history"),
                    "author": actor["accountId"],
                    "created": ts,
                    "items": items,
                }
                if self.cloud
                else None
            )
            self._emit("jira:issue_created", "issue_created", actor, issue, hist, ts=ts)
            for c in (body.get("update") or {}).get("comment", []) or []:
                if isinstance(c, dict) and "add" in c:
                    self._add_comment(actor, issue, c["add"].get("body"), version, c["add"])
            return issue

    def _place(
        self, itype: str | None, values: dict, errors: dict, *, creating: bool, project: str
    ) -> None:
        """Check a new or changed parent against the issue hierarchy (epic 1, standard 0,
        sub-task -1: a sub-task's parent is a standard issue, a standard issue's is an epic).

        On Data Center a standard issue's epic is set by its Epic Link field and `parent`
        is a sub-task's only; the Epic Link is folded into `parent` here (it is stored so)."""
        if DC_EPIC_LINK in values:
            epic = values.pop(DC_EPIC_LINK)
            if hierarchy_level(itype) != 0:
                errors[DC_EPIC_LINK] = "Epic Link can only be set on a standard issue type."
                return
            values["parent"] = epic
        elif "parent" in values and not self.cloud and hierarchy_level(itype) != -1:
            errors["parent"] = "Given parent issue does not belong to appropriate hierarchy."
            return
        level = hierarchy_level(itype)
        if level == -1 and creating and not values.get("parent"):
            errors["parent"] = "Issue type is a sub-task but parent issue key or id not specified."
            return
        if "parent" not in values:
            return
        parent = self.issues.get(values["parent"] or "")
        if parent is None:
            if level == -1:
                errors["parent"] = "A sub-task must have a parent issue."
            return
        if hierarchy_level(parent["issuetype"]) != level + 1:
            errors["parent"] = "Given parent issue does not belong to appropriate hierarchy."
        elif level == -1 and parent["project"] != project:  # an epic may be in another
            errors["parent"] = "Sub-task and parent must be in the same project."

    def _target_project(self, fields: dict, errors: dict) -> dict | None:
        """Pop ``project`` from create fields; note missing project/type/summary in errors."""
        proj = None
        pref = fields.pop("project", None)
        if not isinstance(pref, dict):
            errors["project"] = "Specify a valid project ID or key"
        else:
            for p in self.projects.values():
                if pref.get("key", "").upper() == p["key"] or str(pref.get("id")) == p["id"]:
                    proj = p
            if proj is None:
                errors["project"] = "valid project is required"
        if "issuetype" not in fields:
            errors["issuetype"] = "Specify an issue type"
        if not fields.get("summary") and "summary" not in errors:
            errors["summary"] = "You must specify a summary of the issue."
        return proj

    def _parse_values(
        self, fields: dict, version: str, proj: dict, errors: dict, *, parent_settable: bool
    ) -> dict[str, Any]:
        """Parse every settable field; collect per-field errors instead of stopping."""
        values: dict[str, Any] = {}
        for fid, val in fields.items():
            if (
                fid not in EDITABLE
                and fid not in CUSTOM_FIELDS
                and (fid not in DC_AGILE_FIELDS or self.cloud)
                or (fid == "parent" and not parent_settable)
            ):
                errors[fid] = CANNOT_SET.format(fid)
                continue
            try:
                values[fid] = self.parse_field(fid, val, version, proj)
            except ApiError as e:
                errors.update(e.errors)
        return values

    def _new_issue(self, proj: dict, actor: dict, values: dict, props: list, ts: int) -> dict:
        """Allocate id and key, store the new issue in To Do and return it."""
        iid = self._next("issue")
        key = f"{proj['key']}-{proj['next']}"
        proj["next"] += 1
        todo = STATUSES[self.flavor][0][0]
        issue = {
            "id": iid,
            "key": key,
            "project": proj["key"],
            "issuetype": values.get("issuetype"),
            "summary": values["summary"],
            "description": values.get("description"),
            "environment": values.get("environment"),
            "priority": values.get("priority") or DEFAULT_PRIORITY,
            "labels": values.get("labels", []),
            "duedate": values.get("duedate"),
            "status": todo,
            "assignee": values.get("assignee"),
            "reporter": values["reporter"] if "reporter" in values else actor["accountId"],
            "creator": actor["accountId"],
            "created": ts,
            "updated": ts,
            "resolution": None,
            "resolutiondate": None,
            "statuscategorychangedate": ts,
            "lastViewed": None,
            "components": values.get("components", []),
            "fixVersions": values.get("fixVersions", []),
            "versions": values.get("versions", []),
            "parent": values.get("parent"),
            "epic_name": values.get(DC_EPIC_NAME),
            "custom": {k: v for k, v in values.items() if k in CUSTOM_FIELDS and v is not None},
            "comments": [],
            "worklogs": [],
            "timeestimate": None,
            "properties": {p["key"]: p.get("value") for p in props},
            "remotelinks": [],
            "history": [],
            "watchers": [actor["accountId"]],
        }
        self.issues[iid] = issue
        self.keys[key] = iid
        return issue

    def edit_issue(self, *, actor: dict, key: str, body: dict, version: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            proj = self.project_of(issue)
            if not isinstance(body, dict):
                raise ApiError(400, ["Can not deserialize instance of IssueUpdateBean"])
            fields = dict(body.get("fields") or {})
            errors: dict[str, str] = {}
            update = body.get("update") or {}
            for fid in fields:
                if fid in update:
                    errors[fid] = (
                        "Field '" + fid + "' cannot be set in both the 'fields' and 'update' parts"
                    )
            try:
                fields.update(self._apply_update_ops(issue, update, version, proj))
            except ApiError as e:
                errors.update(e.errors)
            # Cloud changes a parent by edit (a sub-task's, or a standard issue's epic); Data
            # Center cannot move a sub-task to another parent by edit (only its Epic Link).
            values = self._parse_values(fields, version, proj, errors, parent_settable=self.cloud)
            # `fields` holds the update operations' fields too (comments apart).
            errors.update(self.screen_errors(issue, list(fields)))
            if "issuetype" in values and (values["issuetype"] == SUBTASK_TYPE) != (
                issue["issuetype"] == SUBTASK_TYPE
            ):
                errors["issuetype"] = "The issue type selected is invalid."
            self._place(
                values.get("issuetype", issue["issuetype"]),
                values,
                errors,
                creating=False,
                project=issue["project"],
            )
            if errors:
                raise ApiError(400, errors=errors)
            comments = [c for c in update.get("comment", []) or [] if isinstance(c, dict)]
            items: list[dict] = []
            ts = now_ms()
            for fid, new in values.items():
                if fid in RICH_FIELDS:
                    kept = self.kept_adf(fields.get(fid), version)
                    if kept is not None:
                        issue.setdefault("adf", {})[fid] = kept
                    else:
                        issue.setdefault("adf", {}).pop(fid, None)
                if fid == DC_EPIC_NAME:
                    items += self._diff_items(issue, fid, issue.get("epic_name"), new)
                    issue["epic_name"] = new
                elif fid in CUSTOM_FIELDS:
                    old = issue["custom"].get(fid)
                    items += self._diff_items(issue, fid, old, new)
                    if new is None:
                        issue["custom"].pop(fid, None)
                    else:
                        issue["custom"][fid] = new
                else:
                    items += self._diff_items(issue, fid, issue[fid], new)
                    issue[fid] = new
            if items:
                issue["updated"] = ts
                hist = self._record(issue, actor, items, ts)
                only_assignee = all(i["fieldId"] == "assignee" for i in items)
                type_name = "issue_assigned" if only_assignee and self.cloud else "issue_updated"
                self._emit("jira:issue_updated", type_name, actor, issue, hist, ts=ts)
            for c in comments:
                if "add" in c:
                    self._add_comment(
                        actor, issue, (c["add"] or {}).get("body"), version, c["add"] or {}
                    )

    def assign(self, *, actor: dict, key: str, body: dict) -> None:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            new = self._user_ref(body, "assignee") if body else None
            if body.get("accountId") is None and body.get("name") is None:
                new = None
            items = self._diff_items(issue, "assignee", issue["assignee"], new)
            issue["assignee"] = new
            ts = now_ms()
            if items:
                issue["updated"] = ts
                hist = self._record(issue, actor, items, ts)
            else:
                # Assigning the current assignee again still fires issue_assigned, with an
                # empty changelog (seen on Cloud); nothing is added to the issue's history.
                hist = {
                    "id": self._next("history"),
                    "author": actor["accountId"],
                    "created": ts,
                    "items": [],
                }
            self._emit("jira:issue_updated", "issue_assigned", actor, issue, hist, ts=ts)

    def delete_issue(self, *, actor: dict, key: str, delete_subtasks: bool) -> None:
        with self.lock:
            issue = self.get_issue(key)
            subs = self._subtask_ids(issue)
            if subs and not delete_subtasks:
                raise ApiError(
                    400,
                    [
                        f"The issue '{issue['key']}' has subtasks.  You must specify the "
                        "'deleteSubtasks' parameter to delete this issue and all its subtasks."
                    ],
                )
            for sid in subs:
                self._delete(actor, self.issues[sid])
            self._delete(actor, issue)

    def _delete(self, actor: dict, issue: dict) -> None:
        ts = now_ms()
        snapshot = copy.deepcopy(issue)
        # render before removal so the payload still knows the project and relations
        self._emit("jira:issue_deleted", "issue_deleted", actor, snapshot, ts=ts)
        if self.cloud:
            # Cloud sends the cascade (the issue's comments going away) on the Secondary flow.
            for c in snapshot["comments"]:
                self._emit(
                    "comment_deleted", None, actor, snapshot, comment=c, ts=ts, flow="Secondary"
                )
        self.issues.pop(issue["id"], None)
        self.keys.pop(issue["key"], None)
        self._drop_links_of(issue["id"])
