"""Worklogs (time tracking) on issues: add, edit, delete, with the issue's time totals,
changelog items and events as Jira records them.

Jira takes a worklog as `timeSpent` ("1h 30m", "2d", "45m"; a day is 8 hours, a week 5 days,
a bare number is minutes) or `timeSpentSeconds`, `started` ("2026-11-26T10:00:00.000+0000")
and an optional `comment` (ADF in REST v3, a string in REST v2). Each change fires
`worklog_created|updated|deleted` (the worklog, naming its issue by `issueId`) and
`jira:issue_updated` (`issue_worklogged`, `issue_worklog_updated`, `issue_worklog_deleted`)
with the changelog items `timespent` (seconds) and `WorklogId`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from . import adf
from .clock import now_ms
from .comments import comment_visibility
from .errors import ApiError

MINUTE, HOUR = 60, 3600
DAY = 8 * HOUR  # Jira's default working day
WEEK = 5 * DAY  # and working week
_UNITS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhm]?)", re.IGNORECASE)
_INVALID_DURATION = "Invalid time duration entered."
_NO_TIME = "You must indicate the time spent working."
_BAD_STARTED = (
    "Invalid date format. Please enter the date in the format \"yyyy-MM-dd'T'HH:mm:ss.SSSZ\"."
)
ADJUST = ("auto", "new", "manual", "leave")


def parse_duration(text: Any, fid: str = "timeLogged") -> int:
    """Seconds of a Jira duration ("1w 2d 3h 30m", "90" = minutes); 400 if not one."""
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, errors={fid: _INVALID_DURATION})
    rest = text.strip()
    total = 0.0
    while rest:
        m = _PART.match(rest)
        if not m:
            raise ApiError(400, errors={fid: _INVALID_DURATION})
        total += float(m.group(1)) * _UNITS.get(m.group(2).lower() or "m", MINUTE)
        rest = rest[m.end() :].lstrip()
    return int(total)


def format_duration(seconds: int) -> str:
    """Jira's display of a duration in working weeks, days, hours and minutes."""
    parts = []
    left = max(int(seconds), 0)
    for unit, size in (("w", WEEK), ("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts) or "0m"


def parse_started(value: Any) -> int:
    """Milliseconds of a worklog's `started` ("2026-11-26T10:00:00.000+0000")."""
    if not isinstance(value, str):
        raise ApiError(400, errors={"started": _BAD_STARTED})
    try:
        when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise ApiError(400, errors={"started": _BAD_STARTED}) from None
    return int(when.timestamp() * 1000)


class WorklogOpsMixin:
    """Worklogs (mixed into :class:`jirasim.store.Store`)."""

    def _worklogs(self, issue: dict) -> list[dict]:
        return issue.setdefault("worklogs", [])

    def time_spent(self, issue: dict) -> int | None:
        """The issue's `timespent`: the sum of its worklogs, None without any."""
        logs = self._worklogs(issue)
        return sum(w["seconds"] for w in logs) if logs else None

    def _worklog_seconds(self, body: dict) -> int:
        if "timeSpentSeconds" in body and body["timeSpentSeconds"] is not None:
            value = body["timeSpentSeconds"]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ApiError(400, errors={"timeLogged": _INVALID_DURATION})
            seconds = int(value)
        elif "timeSpent" in body and body["timeSpent"] is not None:
            seconds = parse_duration(body["timeSpent"])
        else:
            raise ApiError(400, errors={"timeLogged": _NO_TIME})
        if seconds <= 0:
            raise ApiError(400, errors={"timeLogged": _NO_TIME})
        return seconds

    def _worklog_comment(self, body: dict, version: str) -> tuple[str, dict | None]:
        raw = body.get("comment")
        if raw in (None, ""):
            return "", None
        if version == "3":
            if not adf.validate_adf(raw):
                raise ApiError(400, errors={"comment": "Comment is not a valid Atlassian Document"})
            text = adf.adf_to_wiki(raw, panels=self._keeps_adf(version)) or ""
        elif isinstance(raw, str):
            text = self._line_ends(raw)
        else:
            raise ApiError(400, errors={"comment": "Operation value must be a string"})
        self._check_length(len(text), "comment")
        return text, self.kept_adf(raw, version)

    def _adjust(self, issue: dict, query: dict, delta: int, *, deleting: bool = False) -> None:
        """The remaining estimate after logging `delta` seconds (`adjustEstimate`)."""
        how = query.get("adjustEstimate") or "auto"
        if how not in ADJUST:
            raise ApiError(400, errors={"adjustEstimate": f"Invalid value: {how}"})
        estimate = issue.get("timeestimate")
        if how == "new":
            if not query.get("newEstimate"):
                raise ApiError(400, errors={"newEstimate": "newEstimate is required."})
            issue["timeestimate"] = parse_duration(query["newEstimate"], "newEstimate")
        elif how == "manual":
            name = "increaseBy" if deleting else "reduceBy"
            if not query.get(name):
                raise ApiError(400, errors={name: f"{name} is required."})
            by = parse_duration(query[name], name)
            if estimate is not None:
                issue["timeestimate"] = max(estimate + (by if deleting else -by), 0)
        elif how == "auto" and estimate is not None:
            issue["timeestimate"] = max(estimate - delta, 0)

    def _worklog_items(
        self, issue: dict, before: int | None, est_before: int | None, frm: Any, to: Any
    ) -> list[dict]:
        items = []
        for fid, old, new in (
            ("timespent", before, self.time_spent(issue)),
            ("timeestimate", est_before, issue.get("timeestimate")),
        ):
            if old != new:  # seconds, as text, in both `from`/`fromString` and `to`/`toString`
                frm_s, to_s = (None if v is None else str(v) for v in (old, new))
                items.append(self._item(fid, frm_s, frm_s, to_s, to_s))
        items.append(self._item("WorklogId", frm, frm, to, to))
        return items

    def _emit_worklog(
        self, event: str, type_name: str, actor: dict, issue: dict, w: dict, items: list
    ) -> None:
        ts = w["updated"] if event != "worklog_deleted" else now_ms()
        issue["updated"] = ts
        history = self._record(issue, actor, items, ts)
        self._emit(event, None, actor, issue, worklog=w, ts=ts)
        self._emit("jira:issue_updated", type_name, actor, issue, history=history, ts=ts)

    def add_worklog(
        self, *, actor: dict, key: str, body: Any, version: str, query: dict | None = None
    ) -> tuple[dict, dict]:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            seconds = self._worklog_seconds(body)
            started = parse_started(body["started"]) if body.get("started") else now_ms()
            text, kept = self._worklog_comment(body, version)
            before, est_before = self.time_spent(issue), issue.get("timeestimate")
            self._adjust(issue, query or {}, seconds)
            self.seq.setdefault("worklog", 10000)
            ts = now_ms()
            w = {
                "id": self._next("worklog"),
                "author": actor["accountId"],
                "updateAuthor": actor["accountId"],
                "comment": text,
                "adf": kept,
                "started": started,
                "seconds": seconds,
                "visibility": comment_visibility(body.get("visibility")),
                "created": ts,
                "updated": ts,
            }
            self._worklogs(issue).append(w)
            items = self._worklog_items(issue, before, est_before, None, w["id"])
            self._emit_worklog("worklog_created", "issue_worklogged", actor, issue, w, items)
            return issue, w

    def get_worklog(self, key: str, wid: str) -> tuple[dict, dict]:
        issue = self.get_issue(key)
        for w in self._worklogs(issue):
            if w["id"] == str(wid):
                return issue, w
        raise ApiError(404, [f"Cannot find worklog with id: {wid}"])

    def edit_worklog(
        self,
        *,
        actor: dict,
        key: str,
        wid: str,
        body: Any,
        version: str,
        query: dict | None = None,
    ) -> tuple[dict, dict]:
        with self.lock:
            issue, w = self.get_worklog(key, wid)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            given_time = any(body.get(k) is not None for k in ("timeSpent", "timeSpentSeconds"))
            seconds = self._worklog_seconds(body) if given_time else w["seconds"]
            started = parse_started(body["started"]) if body.get("started") else w["started"]
            before, est_before = self.time_spent(issue), issue.get("timeestimate")
            self._adjust(issue, query or {}, seconds - w["seconds"])
            if "comment" in body:
                w["comment"], w["adf"] = self._worklog_comment(body, version)
            if "visibility" in body:  # as on comments: absent keeps it, null clears it
                w["visibility"] = comment_visibility(body["visibility"])
            w.update(seconds=seconds, started=started, updateAuthor=actor["accountId"])
            w["updated"] = now_ms()
            items = self._worklog_items(issue, before, est_before, w["id"], w["id"])
            self._emit_worklog("worklog_updated", "issue_worklog_updated", actor, issue, w, items)
            return issue, w

    def delete_worklog(self, *, actor: dict, key: str, wid: str, query: dict | None = None) -> None:
        with self.lock:
            issue, w = self.get_worklog(key, wid)
            before, est_before = self.time_spent(issue), issue.get("timeestimate")
            self._adjust(issue, query or {}, -w["seconds"], deleting=True)
            self._worklogs(issue).remove(w)
            items = self._worklog_items(issue, before, est_before, w["id"], None)
            self._emit_worklog("worklog_deleted", "issue_worklog_deleted", actor, issue, w, items)
