"""JQL search over the store: ``Store.search`` / ``Store.matches`` and ``JqlContext``.

``JqlContext`` answers the evaluator in :mod:`jirasim.jql` (field values, value
resolution, sort keys); the REST paging of results lives in :mod:`jirasim.routes_search`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from . import jql
from .clock import ms_to_dt, now_ms
from .errors import ApiError
from .model import CUSTOM_FIELDS, ISSUE_TYPES, PRIORITIES, RESOLUTIONS, STATUS_CATEGORIES

if TYPE_CHECKING:
    from .store import Store


class SearchMixin:
    """Search and webhook JQL filters (mixed into :class:`jirasim.store.Store`)."""

    def search(
        self,
        jql_text: str | None,
        actor: dict | None,
        lag_ms: int = 0,
        reconcile: set[str] | frozenset[str] = frozenset(),
    ) -> list[dict]:
        """Issues matching the JQL. With a lag, issues changed in the last `lag_ms` are not
        found yet, except those named in `reconcile` (Cloud's reconcileIssues), which are
        matched on their current state."""
        with self.lock:
            try:
                q = jql.parse(jql_text)
            except jql.JqlError as e:
                raise ApiError(400, [str(e)]) from None
            ctx = JqlContext(self, actor)
            ctx.check(q)
            try:
                hidden_after = now_ms() - lag_ms if lag_ms else None
                hits = [
                    i
                    for i in self.issues.values()
                    if (
                        hidden_after is None or i["updated"] <= hidden_after or i["id"] in reconcile
                    )
                    and jql.evaluate(q.where, i, ctx)
                ]
            except jql.JqlError as e:
                raise ApiError(400, [str(e)]) from None
            order = q.order or [("key", "desc")]
            for fname, direction in reversed(order):
                hits.sort(key=lambda i, f=fname: ctx.sort_key(i, f), reverse=direction == "desc")
            return hits

    def matches(self, jql_text: str | None, issue: dict) -> bool:
        with self.lock:
            if not jql_text or not jql_text.strip():
                return True
            try:
                q = jql.parse(jql_text)
                return jql.evaluate(q.where, issue, JqlContext(self, None, lenient=True))
            except (jql.JqlError, ApiError):
                return False


_CF_RE = re.compile(r"^cf\[(\d+)\]$", re.I)


class JqlContext:
    """Answers the JQL evaluator's questions about issues in this store."""

    FIELDS = {
        "project": "project",
        "key": "key",
        "issuekey": "key",
        "id": "id",
        "issue": "key",
        "issuetype": "issuetype",
        "type": "issuetype",
        "status": "status",
        "statuscategory": "statuscategory",
        "priority": "priority",
        "resolution": "resolution",
        "assignee": "assignee",
        "reporter": "reporter",
        "creator": "creator",
        "labels": "labels",
        "summary": "summary",
        "description": "description",
        "text": "text",
        "comment": "comment",
        "created": "created",
        "createddate": "created",
        "updated": "updated",
        "updateddate": "updated",
        "resolved": "resolutiondate",
        "resolutiondate": "resolutiondate",
        "due": "duedate",
        "duedate": "duedate",
        "parent": "parent",
        "component": "components",
        "fixversion": "fixVersions",
    }

    def __init__(self, store: Store, actor: dict | None, lenient: bool = False):
        self.store = store
        self.actor = actor
        self.lenient = lenient
        self._now = dt.datetime.now(tz=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def canon(self, fname: str) -> str:
        low = fname.lower()
        if low in self.FIELDS:
            return self.FIELDS[low]
        m = _CF_RE.match(fname)
        if m and f"customfield_{m.group(1)}" in CUSTOM_FIELDS:
            return f"customfield_{m.group(1)}"
        if fname in CUSTOM_FIELDS:
            return fname
        for fid, (name, _, _) in CUSTOM_FIELDS.items():
            if name.lower() == low:
                return fid
        raise ApiError(
            400,
            [f"Field '{fname}' does not exist or you do not have permission to view it."],
        )

    def check(self, q: jql.Query) -> None:
        def walk(node):
            if isinstance(node, jql.BoolOp):
                for c in node.children:
                    walk(c)
            elif isinstance(node, jql.Clause):
                self.canon(node.field)
                for v in node.values:
                    if v is not jql.EMPTY and not isinstance(v, jql.Func):
                        self.resolve_value(node.field, v)

        walk(q.where)
        for fname, _ in q.order:
            if fname not in ("rank",):
                self.canon(fname)

    def _user_vals(self, acct: str | None) -> list:
        if not acct or acct not in self.store.users:
            return []
        u = self.store.users[acct]
        return [u["accountId"].lower(), u["name"].lower(), u["email"].lower(), u["key"].lower()]

    def field_values(self, issue: dict, fname: str) -> tuple[str, list]:
        s = self.store
        f = self.canon(fname)
        if f == "project":
            p = s.projects.get(issue["project"], {"id": "", "key": issue["project"]})
            return "text", [p["key"].lower(), p["id"], p.get("name", "").lower()]
        if f == "key":
            return "id", [key_sort(issue["key"])]
        if f == "id":
            return "number", [int(issue["id"])]
        if f == "issuetype":
            t = next(t for t in ISSUE_TYPES if t[0] == issue["issuetype"])
            return "text", [t[0], t[1].lower()]
        if f == "status":
            _, name, _ = s.statuses[issue["status"]]
            return "text", [issue["status"], name.lower()]
        if f == "statuscategory":
            cat = STATUS_CATEGORIES[s.status_cat(issue["status"])]
            return "text", [cat["key"], cat["name"].lower(), str(cat["id"])]
        if f == "priority":
            p = next(p for p in PRIORITIES if p[0] == issue["priority"])
            return "text", [p[0], p[1].lower()]
        if f == "resolution":
            if not issue["resolution"]:
                return "text", []
            r = next(r for r in RESOLUTIONS if r[0] == issue["resolution"])
            return "text", [r[0], r[1].lower()]
        if f in ("assignee", "reporter", "creator"):
            return "text", self._user_vals(issue[f])
        if f == "labels":
            return "text", [x.lower() for x in issue["labels"]]
        if f in ("summary", "description"):
            return "text", [issue[f]] if issue[f] else []
        if f == "comment":
            return "text", [c["body"] for c in issue["comments"]]
        if f == "text":
            vals = [issue["summary"], issue["description"] or ""]
            return "text", vals + [c["body"] for c in issue["comments"]]
        if f in ("created", "updated", "resolutiondate"):
            return "date", [ms_to_dt(issue[f])] if issue[f] else []
        if f == "duedate":
            if not issue["duedate"]:
                return "date", []
            d = dt.date.fromisoformat(issue["duedate"])
            return "date", [dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)]
        if f == "parent":
            par = s.issues.get(issue.get("parent") or "")
            return "text", [par["key"].lower(), par["id"]] if par else []
        if f in ("components", "fixVersions"):
            pool = s.projects[issue["project"]]["components" if f == "components" else "versions"]
            names = {x["id"]: x["name"].lower() for x in pool}
            return "text", [v for x in issue[f] for v in (x, names.get(x, ""))]
        if f in CUSTOM_FIELDS:
            return _custom_values(issue, f)
        return "text", []

    def resolve_value(self, fname: str, value: Any) -> list:
        s = self.store
        f = self.canon(fname)
        if isinstance(value, jql.Func):
            if value.name == "currentuser" and self.actor:
                return self._user_vals(self.actor["accountId"])[:1]
            return []
        v = str(value)
        low = v.lower()
        if f == "project":
            for p in s.projects.values():
                if low in (p["key"].lower(), p["id"], p["name"].lower()):
                    return [p["key"].lower()]
            if self.lenient:
                return [low]
            raise ApiError(400, [f"The value '{v}' does not exist for the field 'project'."])
        if f == "key":
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*-\d+$", v):
                if v.isdigit() and v in s.issues:
                    return [key_sort(s.issues[v]["key"])]
                raise ApiError(400, [f"The issue key '{v}' for field 'key' is invalid."])
            if v.upper() not in s.keys and not self.lenient:
                raise ApiError(400, [f"An issue with key '{v}' does not exist for field 'key'."])
            return [key_sort(v)]
        if f == "id":
            return [int(v)] if v.isdigit() else []
        if f == "status":
            if low in s.status_by_name or low in s.statuses:
                return [low]
            if self.lenient:
                return [low]
            raise ApiError(400, [f"The value '{v}' does not exist for the field 'status'."])
        if f == "issuetype":
            if any(low in (t[0], t[1].lower()) for t in ISSUE_TYPES) or self.lenient:
                return [low]
            raise ApiError(400, [f"The value '{v}' does not exist for the field 'type'."])
        if f == "priority":
            if any(low in (p[0], p[1].lower()) for p in PRIORITIES) or self.lenient:
                return [low]
            raise ApiError(400, [f"The value '{v}' does not exist for the field 'priority'."])
        if f == "resolution":
            if low == "unresolved":
                return [jql.EMPTY]
            return [low]
        if f in CUSTOM_FIELDS and CUSTOM_FIELDS[f][1] == "number":
            try:
                return [float(v)]
            except ValueError:
                raise ApiError(400, [f"The value '{v}' is not a valid number."]) from None
        return [low]

    def sort_key(self, issue: dict, fname: str):
        f = self.canon(fname) if fname != "rank" else "id"
        if f == "key":
            return key_sort(issue["key"])
        if f == "id":
            return int(issue["id"])
        if f == "priority":
            return -int(issue["priority"])
        if f == "status":
            return self.store.statuses[issue["status"]][1]
        if f in ("created", "updated", "resolutiondate"):
            return (issue[f] or 0, int(issue["id"]))
        if f in CUSTOM_FIELDS:
            v = issue["custom"].get(f)
            return (v is None, str(v))
        v = issue.get(f)
        return (v is None, str(v or ""))


def _custom_values(issue: dict, f: str) -> tuple[str, list]:
    v = issue["custom"].get(f)
    kind = CUSTOM_FIELDS[f][1]
    if v is None:
        return "text", []
    if kind == "number":
        return "number", [v]
    if kind == "option":
        return "text", [v, dict(CUSTOM_FIELDS[f][2])[v].lower()]
    return "text", [str(v).lower() if kind != "textarea" else v]


def key_sort(key: str) -> tuple[str, int]:
    proj, _, num = key.upper().rpartition("-")
    return (proj, int(num) if num.isdigit() else 0)
