"""Admin webhooks: registration, Jira-shaped payloads, and delivery with retries and faults."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from .clock import fmt_ts, now_ms
from .errors import ApiError
from .faults import Faults
from .store import Store

RETRY_STATUSES = {408, 409, 425, 429}
EVENTS = {
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issuelink_created",
    "issuelink_deleted",
    "worklog_created",
    "worklog_updated",
    "worklog_deleted",
    "attachment_created",  # Cloud only
    "attachment_deleted",  # Cloud only
}
# Jira applies a webhook's JQL filter to issue, comment and worklog events only: link events reach
# every webhook that asks for them.
LINK_EVENTS = {"issuelink_created", "issuelink_deleted"}


class Dispatcher:
    def __init__(
        self,
        store: Store,
        faults: Faults,
        *,
        retry_base: float = 1.0,
        max_retries: int = 5,
        timeout: float = 5.0,
        workers: int = 1,
    ):
        self.store = store
        self.faults = faults
        self.retry_base = retry_base
        self.max_retries = max_retries
        self.timeout = timeout
        self.lock = threading.Condition()
        self.webhooks: dict[int, dict] = {}
        self.deliveries: list[dict] = []
        self._by_id: dict[int, dict] = {}
        self._wh_seq = itertools.count(1)
        self._dl_seq = itertools.count(1)
        self._heap: list[tuple[float, int, int]] = []
        self._tick = itertools.count()
        self._held: list[dict] = []
        self._held_since = 0.0
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="jirasim-wh"
        )
        self._session = requests.Session()
        # Webhook receivers are reached directly, never through a proxy of the environment;
        # and requests would read the environment again on every delivery (~2 ms of CPU).
        self._session.trust_env = False
        self._stop = False
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name="jirasim-scheduler", daemon=True)
        self._thread.start()
        store.listeners.append(self.on_event)

    # ------------------------------------------------------------------ registry
    def webhook_json(self, wh: dict) -> dict:
        out = {
            "name": wh["name"],
            "url": wh["url"],
            "excludeBody": wh["excludeBody"],
            "filters": {"issue-related-events-section": wh["jql"]},
            "events": list(wh["events"]),
            "enabled": wh["enabled"],
            "self": f"{self.store.base_url}/rest/webhooks/1.0/webhook/{wh['id']}",
            "lastUpdatedUser": wh["user"],
            "lastUpdatedDisplayName": wh["userName"],
            "lastUpdated": wh["updated"],
        }
        return out

    def register(self, body: Any, actor: dict, wid: int | None = None) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, ["Invalid webhook"])
        errors = {}
        if not body.get("name"):
            errors["name"] = "Name must be provided"
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["url"] = "URL must be a valid http(s) URL"
        events = body.get("events") or []
        if not isinstance(events, list) or not all(e in EVENTS for e in events):
            errors["events"] = "Unknown event: " + ", ".join(
                str(e)
                for e in (events if isinstance(events, list) else [events])
                if e not in EVENTS
            )
        filters = body.get("filters") or {}
        jql_text = filters.get("issue-related-events-section") if isinstance(filters, dict) else ""
        if jql_text:
            from . import jql as jqlmod

            try:
                jqlmod.parse(jql_text)
            except jqlmod.JqlError as e:
                errors["filters"] = str(e)
        if errors:
            raise ApiError(400, [next(iter(errors.values()))], errors)
        with self.lock:
            if wid is None:
                wid = next(self._wh_seq)
            elif wid not in self.webhooks:
                raise ApiError(404, ["Webhook not found"])
            wh = {
                "id": wid,
                "name": body["name"],
                "url": url,
                "events": events,
                "jql": jql_text or "",
                "excludeBody": bool(body.get("excludeBody", False)),
                "secret": body.get("secret") or None,
                "enabled": bool(body.get("enabled", True)),
                "user": actor["name"] if not self.store.cloud else actor["accountId"],
                "userName": actor["displayName"],
                "updated": now_ms(),
            }
            self.webhooks[wid] = wh
            return wh

    def get(self, wid: int) -> dict:
        with self.lock:
            if wid not in self.webhooks:
                raise ApiError(404, ["Webhook not found"])
            return self.webhooks[wid]

    def delete(self, wid: int) -> None:
        with self.lock:
            if self.webhooks.pop(wid, None) is None:
                raise ApiError(404, ["Webhook not found"])

    # ------------------------------------------------------------------ payloads
    def payload(self, ev: dict) -> dict:
        s = self.store
        issue = ev["issue"]
        name = ev["webhookEvent"]
        out: dict[str, Any] = {"timestamp": ev["timestamp"], "webhookEvent": name}
        if name in LINK_EVENTS:
            link = ev["link"]
            t = s.link_types[link["type"]]
            out["issueLink"] = {
                "id": int(link["id"]),
                "sourceIssueId": int(link["source"]),
                "destinationIssueId": int(link["dest"]),
                "issueLinkType": {
                    "id": int(t["id"]),
                    "name": t["name"],
                    "outwardName": t["outward"],
                    "inwardName": t["inward"],
                    "isSubTaskLinkType": False,
                    "isSystemLinkType": False,
                },
                "systemLink": False,
            }
            return out
        if name.startswith("worklog_"):
            # Jira names the issue by `issueId` in the worklog only: no `issue`, no `user`.
            out["worklog"] = s.worklog_json(issue, ev["worklog"])
            return out
        if name.startswith("attachment_"):  # Cloud: the attachment alone, no issue
            att = s.attachment_json(ev["attachment"])
            if name == "attachment_deleted":
                att.pop("content", None)
            out["attachment"] = att
            return out
        if name.startswith("comment_"):
            if not (s.cloud or name == "comment_created"):
                out["user"] = s.user_json(ev["actor"])
            out["comment"] = s.comment_json(issue, ev["comment"])
            if s.cloud:
                fields = s.issue_fields(issue, "2", webhook=True)
                keep = ("summary", "issuetype", "project", "assignee", "priority", "status")
                out["issue"] = {
                    "id": issue["id"],
                    # Jira Cloud really sends this malformed self link (no "issue/").
                    "self": f"{s.base_url}/rest/api/2/{issue['id']}",
                    "key": issue["key"],
                    "fields": {k: fields[k] for k in keep},
                }
            return out
        if name != "jira:issue_deleted":
            out["issue_event_type_name"] = ev["issue_event_type_name"]
        out["user"] = s.user_json(ev["actor"])
        out["issue"] = {
            "id": issue["id"],
            "self": f"{s.base_url}/rest/api/2/issue/{issue['id']}",
            "key": issue["key"],
            # Cloud leaves comments and work logs out of issue events, except on deletion.
            "fields": s.issue_fields(
                issue, "2", webhook=True, comments=name == "jira:issue_deleted"
            ),
        }
        if ev.get("history") is not None:
            h = ev["history"]
            out["changelog"] = {"id": h["id"], "items": [s.item_json(i) for i in h["items"]]}
        if ev.get("comment") and ev["issue_event_type_name"] != "issue_comment_deleted":
            out["comment"] = s.comment_json(issue, ev["comment"])
        return out

    def _url(self, wh: dict, issue: dict) -> str:
        url = wh["url"]
        if "${" not in url:
            return url
        proj = self.store.projects.get(issue["project"], {})
        for var, val in (
            ("${issue.id}", issue["id"]),
            ("${issue.key}", issue["key"]),
            ("${project.id}", proj.get("id", "")),
            ("${project.key}", issue["project"]),
        ):
            url = url.replace(var, str(val))
        return url

    def on_event(self, ev: dict) -> None:
        """Called by the store (under its lock) for every change."""
        with self.lock:
            hooks = [w for w in self.webhooks.values() if w["enabled"]]
        targets = [
            w
            for w in hooks
            if ev["webhookEvent"] in w["events"]
            and (ev["webhookEvent"] in LINK_EVENTS or self.store.matches(w["jql"], ev["issue"]))
        ]
        if not targets:
            return
        with self.store.viewed_by(None):  # a webhook is nobody's own view of a user
            body = self.payload(ev)
        raw = json.dumps(body, separators=(",", ":")).encode()
        for wh in targets:
            self._new_delivery(wh, ev, raw, body, ev.get("flow", "Primary"))

    def _new_delivery(self, wh: dict, ev: dict, raw: bytes, body: dict, flow: str) -> None:
        payload = b"" if wh["excludeBody"] else raw
        d = {
            "id": next(self._dl_seq),
            "identifier": str(uuid.uuid4()),
            "webhook": wh["id"],
            "webhookName": wh["name"],
            "event": ev["webhookEvent"],
            "issueEventType": ev.get("issue_event_type_name"),
            "issueKey": ev["issue"]["key"],
            "url": self._url(wh, ev["issue"]),
            "secret": wh["secret"],
            "flow": flow,
            "status": "pending",
            "attempts": [],
            "created": fmt_ts(now_ms()),
            "raw": payload,
            "body": None if wh["excludeBody"] else body,
            "duplicateOf": None,
        }
        with self.lock:
            self.deliveries.append(d)
            self._by_id[d["id"]] = d
            if len(self.deliveries) > 10000:
                old = self.deliveries.pop(0)
                self._by_id.pop(old["id"], None)
        if self.faults.take("webhook_drop"):
            d["status"] = "dropped"
            return
        copies = [d]
        if self.faults.take("webhook_duplicate"):
            dup = dict(d, id=next(self._dl_seq), attempts=[], duplicateOf=d["id"])
            with self.lock:
                self.deliveries.append(dup)
                self._by_id[dup["id"]] = dup
            copies.append(dup)
        delay = self.faults.get("webhook_delay_ms") / 1000.0
        if self.faults.take("webhook_late"):
            delay += self.faults.get("webhook_late_ms") / 1000.0
        window = self.faults.get("webhook_reorder_window")
        with self.lock:
            for c in copies:
                if window > 0:
                    if not self._held:
                        self._held_since = time.monotonic()
                    self._held.append(c)
                    c["status"] = "held"
                else:
                    self._schedule(c, delay)
            if window > 0 and len(self._held) >= window:
                self._release_held(delay)
            self.lock.notify_all()

    def _release_held(self, delay: float) -> None:
        held, self._held = self._held, []
        held.reverse()
        for i, c in enumerate(held):
            c["status"] = "pending"
            self._schedule(c, delay + i * 0.01)

    def _schedule(self, d: dict, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._tick), d["id"]))
        self.lock.notify_all()

    # ------------------------------------------------------------------ delivery
    def _run(self) -> None:
        while True:
            with self.lock:
                if self._stop:
                    return
                now = time.monotonic()
                if self._held and now - self._held_since > 1.0:
                    self._release_held(self.faults.get("webhook_delay_ms") / 1000.0)
                due = []
                while self._heap and self._heap[0][0] <= now:
                    _, _, did = heapq.heappop(self._heap)
                    if did in self._by_id:
                        due.append(self._by_id[did])
                wait = 0.2
                if self._heap:
                    wait = min(wait, max(0.0, self._heap[0][0] - now))
                if not due:
                    self.lock.wait(timeout=wait)
                    continue
                self._inflight += len(due)
            for d in due:
                self._pool.submit(self._attempt, d)

    def _attempt(self, d: dict) -> None:
        try:
            self._send(d)
        finally:
            with self.lock:
                self._inflight -= 1
                self.lock.notify_all()

    def _send(self, d: dict) -> None:
        n = len(d["attempts"])
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": d["identifier"],
            "X-Atlassian-Webhook-Flow": d["flow"],
        }
        if n:
            headers["X-Atlassian-Webhook-Retry"] = str(n)
        if d["secret"]:
            sig = hmac.new(d["secret"].encode(), d["raw"], hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={sig}"
        rec: dict[str, Any] = {"attempt": n + 1, "at": fmt_ts(now_ms()), "status": None}
        started = time.monotonic()
        retry = False
        try:
            resp = self._session.post(
                d["url"],
                data=d["raw"],
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
            rec["status"] = resp.status_code
            rec["response"] = resp.text[:500]
            code = resp.status_code
            retry = code in RETRY_STATUSES or code >= 500
            ok = 200 <= code < 300
        except requests.Timeout:
            rec["error"] = "timeout"
            retry, ok = True, False
        except requests.ConnectionError as e:
            rec["error"] = f"connection failed: {type(e).__name__}"
            retry, ok = True, False
        except requests.RequestException as e:  # pragma: no cover - unusual client errors
            rec["error"] = f"{type(e).__name__}: {e}"
            retry, ok = False, False
        rec["duration_ms"] = int((time.monotonic() - started) * 1000)
        with self.lock:
            d["attempts"].append(rec)
            if ok:
                d["status"] = "delivered"
            elif retry and n < self.max_retries:
                d["status"] = "retrying"
                backoff = self.retry_base * (2**n) * random.uniform(0.9, 1.1)  # noqa: S311
                self._schedule(d, backoff)
            else:
                d["status"] = "failed"

    # ------------------------------------------------------------------ introspection
    def delivery_json(self, d: dict, with_body: bool = True) -> dict:
        out = {k: v for k, v in d.items() if k not in ("raw", "secret")}
        if not with_body:
            out.pop("body", None)
        return out

    def log(self, since: int = 0, with_body: bool = True) -> list[dict]:
        with self.lock:
            return [self.delivery_json(d, with_body) for d in self.deliveries if d["id"] > since]

    def idle(self) -> bool:
        with self.lock:
            return not self._heap and not self._held and self._inflight == 0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle():
                return True
            time.sleep(0.01)
        return False

    def clear(self, webhooks: bool = True) -> None:
        with self.lock:
            if webhooks:
                self.webhooks.clear()
            self.deliveries.clear()
            self._by_id.clear()
            self._heap.clear()
            self._held.clear()

    def stop(self) -> None:
        with self.lock:
            self._stop = True
            self.lock.notify_all()
        self._thread.join(timeout=2)
        self._pool.shutdown(wait=False, cancel_futures=True)
