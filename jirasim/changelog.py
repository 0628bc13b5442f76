"""Changelog items from value changes, histories on issues, and change events to listeners.

An event is a plain dict (``webhookEvent``, ``issue_event_type_name``, actor, issue, history,
comment, timestamp, flow) that the webhook dispatcher turns into payloads.
"""

from __future__ import annotations

from typing import Any

from .clock import now_ms
from .model import CUSTOM_FIELDS, DC_AGILE_FIELDS, DC_EPIC_LINK, ISSUE_TYPES, PRIORITIES

_MULTI_LABEL = {"components": "Component", "fixVersions": "Fix Version", "versions": "Version"}


class ChangelogMixin:
    """Builds changelog items and emits change events (mixed into ``Store``)."""

    def _item(self, fid: str, frm: Any, frm_s: Any, to: Any, to_s: Any, **extra) -> dict:
        if fid in CUSTOM_FIELDS:
            field, ftype = CUSTOM_FIELDS[fid][0], "custom"
        elif fid in DC_AGILE_FIELDS:
            field, ftype = DC_AGILE_FIELDS[fid][0], "custom"
        else:
            field, ftype = fid, "jira"
        item = {
            "field": field,
            "fieldtype": ftype,
            "fieldId": fid,
            "from": frm,
            "fromString": frm_s,
            "to": to,
            "toString": to_s,
        }
        item.update(extra)
        return item

    def _user_label(self, acct: str | None) -> tuple[Any, Any]:
        if not acct or acct not in self.users:
            return None, None
        u = self.users[acct]
        return (u["accountId"] if self.cloud else u["key"]), u["displayName"]

    def _diff_items(self, issue: dict, fid: str, old: Any, new: Any) -> list[dict]:
        if old == new:
            return []
        proj = self.project_of(issue)
        if fid in ("summary", "description", "environment"):
            return [self._item(fid, None, old, None, new)]
        if fid == "labels":
            return [self._item(fid, None, " ".join(old) or "", None, " ".join(new) or "")]
        if fid == "priority":
            names = {p[0]: p[1] for p in PRIORITIES}
            return [self._item(fid, old, names.get(old), new, names.get(new))]
        if fid == "issuetype":
            names = {t[0]: t[1] for t in ISSUE_TYPES}
            return [self._item(fid, old, names.get(old), new, names.get(new))]
        if fid in ("assignee", "reporter"):
            f, fs = self._user_label(old)
            t, ts = self._user_label(new)
            return [self._item(fid, f, fs, t, ts, fromAcct=old, toAcct=new)]
        if fid == "duedate":
            return [
                self._item(
                    fid,
                    old,
                    f"{old} 00:00:00.0" if old else None,
                    new,
                    f"{new} 00:00:00.0" if new else None,
                )
            ]
        if fid in _MULTI_LABEL:
            return self._diff_multi(proj, fid, old, new)
        if fid == "parent":
            ok = self.issues.get(old, {}).get("key") if old else None
            nk = self.issues.get(new, {}).get("key") if new else None
            if not self.cloud:  # a standard issue's epic, by its Epic Link field
                return [self._item(DC_EPIC_LINK, old, ok, new, nk)]
            return [self._item("IssueParentAssociation", old, ok, new, nk)]
        if fid in DC_AGILE_FIELDS:
            return [self._item(fid, None, old, None, new)]
        if fid in CUSTOM_FIELDS:
            kind = CUSTOM_FIELDS[fid][1]
            if kind == "option":
                opts = dict(CUSTOM_FIELDS[fid][2])
                return [self._item(fid, old, opts.get(old), new, opts.get(new))]

            def s(v):
                if v is None:
                    return None
                if isinstance(v, float) and v.is_integer():
                    return str(int(v))
                return str(v)

            return [self._item(fid, None, s(old), None, s(new))]
        return [self._item(fid, None, str(old), None, str(new))]

    def _diff_multi(self, proj: dict, fid: str, old: list, new: list) -> list[dict]:
        """Components and versions: one item per removed/added value."""
        pool = proj["components"] if fid == "components" else proj["versions"]
        names = {x["id"]: x["name"] for x in pool}
        removed = [x for x in old if x not in new]
        added = [x for x in new if x not in old]
        items = []
        # Jira pairs a removed value with an added one in a single item (v1 -> v2).
        for i in range(max(len(removed), len(added))):
            r = removed[i] if i < len(removed) else None
            a = added[i] if i < len(added) else None
            it = self._item(fid, r, names.get(r), a, names.get(a))
            it["field"] = _MULTI_LABEL[fid]
            items.append(it)
        return items

    def _creation_items(self, issue: dict) -> list[dict]:
        """The initial values Cloud records as a changelog on ``issue_created``."""
        items = []
        for fid in ("assignee", "description", "priority", "reporter"):
            if fid == "description":
                items.append(self._item(fid, None, None, None, issue[fid] or ""))
            elif issue.get(fid) is not None:
                items += self._diff_items(issue, fid, None, issue[fid])
        todo = issue["status"]
        items.append(self._item("status", None, None, todo, self.statuses[todo][1]))
        items[-1]["field"] = "Status"
        items.append(self._item("summary", None, None, None, issue["summary"]))
        for fid in CUSTOM_FIELDS:
            if fid in issue["custom"]:
                items += self._diff_items(issue, fid, None, issue["custom"][fid])
        return items

    def _record(self, issue: dict, actor: dict, items: list[dict], ts: int) -> dict | None:
        if not items:
            return None
        h = {
            "id": self._next("history"),
            "author": actor["accountId"],
            "created": ts,
            "items": items,
        }
        issue["history"].append(h)
        return h

    def _emit(
        self,
        event: str,
        type_name: str | None,
        actor: dict,
        issue: dict,
        history: dict | None = None,
        comment: dict | None = None,
        ts: int | None = None,
        worklog: dict | None = None,
        flow: str = "Primary",
        link: dict | None = None,
        attachment: dict | None = None,
    ) -> None:
        ev = {
            "flow": flow,
            "webhookEvent": event,
            "issue_event_type_name": type_name,
            "actor": actor["accountId"],
            "issue": issue,
            "history": history,
            "comment": comment,
            "worklog": worklog,
            "attachment": attachment,
            "timestamp": ts or now_ms(),
            "link": link,
        }
        for listener in list(self.listeners):
            listener(ev)
