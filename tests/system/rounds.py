"""The random two-way rounds: people edit one issue pair on both sites, one change a round,
and the other site must follow with exactly one write of the sync per genuine change.

Works against either flavor (Cloud REST v3 with ADF, Data Center REST v2 with wiki markup)
and against any realism options of the simulators: the person's own status change walks the
site's workflow (breadth-first over the transitions Jira offers), users are named the way
the site names them, and what is compared across the sites is what a person would see.
"""

from __future__ import annotations

import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from jirasim import JiraSim
from webhooks.models import WebhookDelivery

from .conftest import sim_call, wait_until

ALICE = ("alice@example.com", "alice-token")  # the people editing issues, on both sites
BOB = ("bob@example.com", "bob-token")
PEOPLE = (ALICE, BOB)
PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]
ISSUE_TYPES = ["Task", "Bug", "Story"]
LABELS = ["a", "b", "c", "d", "e"]
# Every kind of change a person makes in a round (each one genuine change).
OPS = (
    "summary",
    "priority",
    "labels",
    "status",
    "comment",
    "description",
    "assignee",
    "duedate",
    "issuetype",
    "comment_edit",
    "comment_delete",
    "attachment",  # add a file, or delete one (an original or the sync's copy)
    "subtask",  # a sub-task under the round's issue
    "subtask_edit",  # a sub-task renamed (an original or the sync's copy)
    "link",  # link the round's issue to a second synced issue, or unlink them
)
LINK_TYPES = ["Blocks", "Relates", "Duplicate"]
# Worklog changes (an organization with `sync_worklogs` on): log time, edit or delete a
# worklog logged on this site, or edit the sync's copy of one from the other site.
WORKLOG_OPS = ("worklog", "worklog_edit", "worklog_delete", "worklog_copy_edit")

# Ops a partner install (Scenario B) does not carry: attachments stay home there, and
# issue links do not cross between installs yet.
NOT_IN_SCENARIO_B = ("attachment", "link")

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def words(text: str) -> str:
    """What a reader sees of rich text, whatever each site's markup makes of it."""
    return _NON_WORD.sub(" ", text or "").strip().lower()


@dataclass
class Site:
    """One simulated Jira site as its people (Alice, Bob) and its sync account see it."""

    sim: JiraSim
    sync_user: str  # the user name the sync's calls are logged under
    workflow: dict[str, set[str]] | None = None  # learnt by `_graph`

    @property
    def cloud(self) -> bool:
        return self.sim.flavor == "cloud"

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.cloud else "/rest/api/2"

    def call(self, method: str, path: str, who=ALICE, **kwargs) -> requests.Response:
        return sim_call(self.sim, method, f"{self.api}{path}", auth=who, **kwargs)

    def ok(self, method: str, path: str, who=ALICE, **kwargs) -> dict | list | None:
        response = self.call(method, path, who=who, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def add_people(self) -> None:
        """Bob next to Alice (a reset leaves only the site's initial users)."""
        known = {u["email"] for u in self.sim.store.users.values()}
        for email, token in PEOPLE:
            if email not in known:
                response = requests.post(
                    f"{self.sim.base_url}/_sim/users",
                    json={"email": email, "token": token},
                    timeout=5,
                )
                assert response.status_code < 400, response.text

    # --- reading ---------------------------------------------------------------------------

    def rich(self, text: str):
        return wiki_to_adf(text) if self.cloud else text

    def text(self, body) -> str:
        if isinstance(body, dict):
            return adf_to_wiki(body)
        return body or ""

    def person_id(self, email: str) -> str:
        user = self.sim.user(email)
        return user["accountId"] if self.cloud else user["name"]

    def person(self, email: str | None) -> dict | None:
        if email is None:
            return None
        key = "accountId" if self.cloud else "name"
        return {key: self.person_id(email)}

    def fields(self, key: str) -> dict:
        return self.ok("GET", f"/issue/{key}")["fields"]

    def comments(self, key: str) -> list[dict]:
        page = self.ok("GET", f"/issue/{key}/comment", params={"maxResults": 1000})
        return page["comments"]

    def worklogs(self, key: str) -> list[dict]:
        return self.ok("GET", f"/issue/{key}/worklog")["worklogs"]

    def own_worklogs(self, key: str, copies: bool = False) -> list[dict]:
        """The worklogs people logged on this site (with `copies`: the sync's copies)."""
        sync_ids = {self.sim.user(self.sync_email)[k] for k in ("accountId", "name")}
        return [
            w
            for w in self.worklogs(key)
            if ((w.get("author") or {}).get("accountId" if self.cloud else "name") in sync_ids)
            == copies
        ]

    def own_comments(self, key: str, copies: bool = False) -> list[dict]:
        """The comments people wrote on this site (with `copies`: the sync's copies of the
        other site's comments instead)."""
        sync_ids = {self.sim.user(self.sync_email)[k] for k in ("accountId", "name")}
        return [
            c
            for c in self.comments(key)
            if ((c.get("author") or {}).get("accountId" if self.cloud else "name") in sync_ids)
            == copies
        ]

    @property
    def sync_email(self) -> str:
        return next(
            u["email"]
            for u in self.sim.store.users.values()
            if self.sync_user in (u["email"], u["name"])
        )

    def snapshot(self, key: str) -> dict:
        fields = self.fields(key)
        return {
            "summary": fields["summary"],
            "priority": (fields.get("priority") or {}).get("name"),
            "labels": sorted(fields.get("labels") or []),
            "status": fields["status"]["name"],
            "description": words(self.text(fields.get("description"))),
            "assignee": (fields.get("assignee") or {}).get("displayName"),
            "duedate": fields.get("duedate"),
            "issuetype": fields["issuetype"]["name"],
            "components": sorted(c["name"] for c in fields.get("components") or []),
            "attachments": sorted(
                (a["filename"], a["size"]) for a in fields.get("attachment") or []
            ),
            # Each side's sub-task has exactly one copy under the parent's copy: the same
            # summaries (each made unique by its round), none twice.
            "subtasks": sorted(s["fields"]["summary"] for s in fields.get("subtasks") or []),
            "comments": sorted(
                words(self.text(c["body"]).split("wrote:")[-1]) for c in self.comments(key)
            ),
            # Issue links, the other end by its summary (each site has its own keys).
            "links": sorted(
                (
                    x["type"]["name"],
                    "outward" if "outwardIssue" in x else "inward",
                    (x.get("outwardIssue") or x.get("inwardIssue"))["fields"]["summary"],
                )
                for x in fields.get("issuelinks") or []
            ),
            # Time, start and words a reader sees, without the copy's "<author> logged:".
            "worklogs": sorted(
                (
                    w["timeSpentSeconds"],
                    w["started"],
                    words(self.text(w.get("comment")).split("logged:")[-1]),
                )
                for w in (self.worklogs(key) if fields.get("timespent") else ())
            ),
        }

    def writes(self) -> int:
        """The sync account's successful writes to this site's REST API."""
        return len(self.sync_writes())

    def sync_writes(self) -> list[str]:
        """Those writes, as "METHOD path"."""
        calls = requests.get(f"{self.sim.base_url}/_sim/calls", timeout=5).json()["calls"]
        return [
            f"{c['method']} {c['path']}"
            for c in calls
            if c.get("user") == self.sync_user
            and c["method"] in ("POST", "PUT", "DELETE")
            and c["path"].startswith("/rest/api")
            and "/search" not in c["path"]
            and c["status"] < 400
        ]

    def status_names(self, who=ALICE) -> list[str]:
        """The statuses a person can reach in this site's workflow (a status no transition
        leads to, e.g. one kept for imports, is not among them)."""
        graph = self._graph(who)
        return sorted(set(graph) | {s for targets in graph.values() for s in targets})

    # --- acting as a person ----------------------------------------------------------------

    def create(self, summary: str, project: str = "LOC", **fields) -> str:
        """A new Task of `project` by Alice; its key."""
        body = {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}
        return self.ok("POST", "/issue", json={"fields": {**body, **fields}})["key"]

    def edit(self, key: str, who=ALICE, **fields) -> None:
        self.ok("PUT", f"/issue/{key}", who=who, json={"fields": fields})

    def transition(self, key: str, status: str, who=ALICE) -> int:
        """Walk the workflow to `status` as a person would: the shortest path over the
        transitions Jira offers, one step at a time. Returns the number of steps made."""
        current = self.fields(key)["status"]["name"]
        if current == status:
            return 0
        if any(t["to"]["name"] == status for t in self._offered(key, who)):
            path = [status]
        else:
            path = _shortest_path(self._graph(who), current, status)
            assert path, f"no path in the workflow from {current} to {status}"
        for hop in path:
            self._step(key, hop, who)
        return len(path)

    def _offered(self, key: str, who) -> list[dict]:
        body = self.ok(
            "GET", f"/issue/{key}/transitions", who=who, params={"expand": "transitions.fields"}
        )
        return body["transitions"]

    def _step(self, key: str, to: str, who) -> None:
        """One transition to the status `to`, its screen's required fields filled."""
        step = next((t for t in self._offered(key, who) if t["to"]["name"] == to), None)
        assert step is not None, f"{key}: no transition to {to}"
        body: dict = {"transition": {"id": step["id"]}}
        required = {
            name: _required_value(meta)
            for name, meta in (step.get("fields") or {}).items()
            if meta.get("required")
        }
        if required:
            body["fields"] = required
        self.ok("POST", f"/issue/{key}/transitions", who=who, json=body)

    def _graph(self, who) -> dict[str, set[str]]:
        """status -> the statuses one transition away. Jira offers only the transitions of
        an issue's current status, so the graph is learnt once per site by walking a scratch
        issue (in a project no webhook covers) through every status it can reach."""
        if self.workflow is not None:
            return self.workflow
        scratch = self.ok(
            "POST",
            "/issue",
            who=who,
            json={
                "fields": {
                    "project": {"key": self.scratch_project()},
                    "issuetype": {"name": "Task"},
                    "summary": "workflow probe",
                }
            },
        )["key"]
        graph: dict[str, set[str]] = {}
        while True:
            current = self.fields(scratch)["status"]["name"]
            graph[current] = {t["to"]["name"] for t in self._offered(scratch, who)}
            unexplored = sorted({s for to in graph.values() for s in to} - set(graph))
            if not unexplored:
                break
            for hop in _shortest_path(graph, current, unexplored[0]):
                self._step(scratch, hop, who)
        self.workflow = graph
        return graph

    def scratch_project(self) -> str:
        key = "SCR"
        if key not in self.sim.store.projects:
            response = requests.post(
                f"{self.sim.base_url}/_sim/projects",
                json={"key": key, "name": "Scratch"},
                timeout=5,
            )
            assert response.status_code < 400, response.text
        return key


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    """Breadth-first: the statuses after `start` on a shortest path to `goal` ([] if none)."""
    paths: dict[str, list[str]] = {start: []}
    queue = deque([start])
    while queue:
        at = queue.popleft()
        if at == goal:
            return paths[at]
        for nxt in sorted(graph.get(at, ())):
            if nxt not in paths:
                paths[nxt] = [*paths[at], nxt]
                queue.append(nxt)
    return []


def _required_value(meta: dict):
    """A value for a field a transition screen requires: its first allowed value."""
    allowed = meta.get("allowedValues") or []
    if allowed:
        first = allowed[0]
        return {"id": first["id"]} if "id" in first else {"name": first.get("name")}
    raise AssertionError(f"a required transition field without allowed values: {meta}")


def settled(local: Site, partner: Site) -> bool:
    idle = all(
        requests.get(f"{s.sim.base_url}/_sim/idle?timeout=0.2", timeout=5).status_code == 200
        for s in (local, partner)
    )
    busy = WebhookDelivery.objects.filter(status__in=["pending", "processing", "failed"])
    return idle and not busy.exists()


def only_issue(site: Site, project: str) -> dict | None:
    if site.cloud:
        body = site.ok(
            "POST",
            "/search/jql",
            json={"jql": f"project = {project} ORDER BY key", "fields": ["summary"]},
        )
    else:
        body = site.ok(
            "POST", "/search", json={"jql": f"project = {project} ORDER BY key", "maxResults": 5}
        )
    return body["issues"][0] if body.get("issues") else None


def issues_of(site: Site, project: str) -> list[dict]:
    if site.cloud:
        body = site.ok(
            "POST", "/search/jql", json={"jql": f"project = {project}", "fields": ["summary"]}
        )
    else:
        body = site.ok("POST", "/search", json={"jql": f"project = {project}", "maxResults": 5})
    return body.get("issues") or []


def clear_calls(*sites: Site) -> None:
    for site in sites:
        requests.delete(f"{site.sim.base_url}/_sim/calls", timeout=5)


@dataclass
class Rounds:
    """One issue pair and the changes made to it, round by round."""

    local: Site
    partner: Site
    key: str = ""
    remote_key: str = ""
    # The second issue pair, the other end of the issue links the `link` op makes.
    second_key: str = ""
    second_remote_key: str = ""
    genuine: int = 0
    ops: tuple[str, ...] = OPS
    done: list[str] = field(default_factory=list)
    # Whether everything is done, and the inbox's statuses (every delivery's): Scenario A's
    # service runs on the test database; two installs (Scenario B) say it for both of theirs.
    is_settled: Callable[[], bool] | None = None
    inbox: Callable[[], list[str]] | None = None
    explain: Callable[[], str] | None = None  # what to show when a round does not cross

    def settled(self) -> bool:
        if self.is_settled is not None:
            return self.is_settled()
        return settled(self.local, self.partner)

    def statuses(self) -> list[str]:
        if self.inbox is not None:
            return self.inbox()
        return list(WebhookDelivery.objects.values_list("status", flat=True))

    def start(self) -> None:
        self.key = self.local.create("Round robin", priority={"name": "Medium"})
        self.remote_key = wait_until(lambda: only_issue(self.partner, "REM"))["key"]
        wait_until(self.settled, timeout=30)
        if "link" in self.ops:
            self.second_key = self.local.create("Linked partner")
            self.second_remote_key = wait_until(
                lambda: next(
                    (i for i in issues_of(self.partner, "REM") if i["key"] != self.remote_key),
                    None,
                )
            )["key"]
            wait_until(self.settled, timeout=30)
        clear_calls(self.local, self.partner)

    def run(self, rounds: int, seed: int) -> None:
        rng = random.Random(seed)
        for n in range(rounds):
            site, key = (self.local, self.key) if n % 2 == 0 else (self.partner, self.remote_key)
            other, other_key = (
                (self.partner, self.remote_key) if site is self.local else (self.local, self.key)
            )
            op = self.change(site, key, rng.choice(self.ops), n, rng)
            if op == "link":
                op = self.link(site, key, rng)
            self.done.append(f"{n}:{'local' if site is self.local else 'partner'}:{op}")
            self.genuine += 1
            expected = site.snapshot(key)
            try:
                wait_until(
                    lambda o=other, k=other_key, e=expected: o.snapshot(k) == e,
                    timeout=30,
                )
            except AssertionError as exc:
                seen = other.snapshot(other_key)
                diff = {f: (expected[f], seen[f]) for f in expected if expected[f] != seen[f]}
                raise AssertionError(
                    f"round {self.done[-1]}: the other site differs {diff}; rounds {self.done}; "
                    f"{self.explain() if self.explain else exc}"
                ) from None
        wait_until(self.settled, timeout=30)

    def link(self, site: Site, key: str, rng: random.Random) -> str:
        """A person links the round's issue to the second one on `site`, or unlinks them."""
        second = self.second_key if site is self.local else self.second_remote_key
        present = site.fields(key).get("issuelinks") or []
        if present:
            site.ok("DELETE", f"/issueLink/{rng.choice(present)['id']}", who=rng.choice(PEOPLE))
            return "unlink"
        ends = [key, second]
        rng.shuffle(ends)
        body = {
            "type": {"name": rng.choice(LINK_TYPES)},
            "inwardIssue": {"key": ends[0]},
            "outwardIssue": {"key": ends[1]},
        }
        site.ok("POST", "/issueLink", who=rng.choice(PEOPLE), json=body)
        return "link"

    def change(self, site: Site, key: str, op: str, n: int, rng: random.Random) -> str:
        """One genuine change by a person on `site`; the op actually made."""
        if op == "link":
            return op  # made by `link`
        before = site.fields(key)
        who = rng.choice(PEOPLE)
        if op in ("comment_edit", "comment_delete", "copy_edit", "copy_delete"):
            # A person edits or deletes a comment written on this site, or (copy_*) the
            # sync's copy of one from the other site (its original follows, header and all).
            own = site.own_comments(key, copies=op.startswith("copy"))
            if not own:
                op = "comment"
            else:
                target = rng.choice(own)
                path = f"/issue/{key}/comment/{target['id']}"
                if op.endswith("_edit"):
                    text = f"{site.text(target['body'])} edited in round {n}"
                    site.ok("PUT", path, who=who, json={"body": site.rich(text)})
                else:
                    site.ok("DELETE", path, who=who)
                return op
        if op.startswith("worklog"):
            return self._worklog(site, key, op, n, rng, who)
        if op == "attachment":
            return self.attach_or_detach(site, key, before, n, rng, who)
        if op == "subtask_edit":
            subtasks = before.get("subtasks") or []
            if subtasks:  # a person renames one of the issue's sub-tasks (theirs or a copy)
                sub = rng.choice(subtasks)
                site.edit(sub["key"], who, summary=f"{sub['fields']['summary']} / round {n}")
                return op
            op = "subtask"
        if op == "subtask":
            side = "local" if site is self.local else "partner"
            fields = {
                "project": {"key": key.rpartition("-")[0]},
                "issuetype": {"name": "Sub-task"},
                "summary": f"Sub-task of round {n} ({side})",
                "parent": {"key": key},
            }
            site.ok("POST", "/issue", who=who, json={"fields": fields})
            # Its copy is two writes of the sync: the issue, and its link to the original.
            self.genuine += 1
        elif op == "summary":
            site.edit(key, who, summary=f"Round {n} summary")
        elif op == "priority":
            current = (before.get("priority") or {}).get("name")
            choice = rng.choice([p for p in PRIORITIES if p != current])
            site.edit(key, who, priority={"name": choice})
        elif op == "labels":
            labels = rng.sample(LABELS, rng.randint(0, 3)) + [f"r{n}"]
            site.edit(key, who, labels=labels)
        elif op == "status":
            current = before["status"]["name"]
            wanted = rng.choice([s for s in site.status_names(who) if s != current])
            # Each step of the walk is a change of its own, carried step by step.
            self.genuine += site.transition(key, wanted, who) - 1
        elif op == "comment":
            body = site.rich(f"Comment of round {n}")
            site.ok("POST", f"/issue/{key}/comment", who=who, json={"body": body})
        elif op == "description":
            text = rng.choice(
                [
                    f"Round {n}: the *plan* changes",
                    f"Round {n} steps:\n\n* first _step_\n* second step",
                    f"h2. Round {n}\n\nSee {{{{code}}}} and [a link|https://example.com/{n}]",
                ]
            )
            site.edit(key, who, description=site.rich(text))
        elif op == "assignee":
            current = (before.get("assignee") or {}).get("displayName")
            choices = [None, ALICE[0], BOB[0]]
            choices = [
                c for c in choices if (site.sim.user(c)["displayName"] if c else None) != current
            ]
            site.edit(key, who, assignee=site.person(rng.choice(choices)))
        elif op == "duedate":
            current = before.get("duedate")
            day = f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            site.edit(key, who, duedate=None if current and rng.random() < 0.2 else day)
        elif op == "issuetype":
            current = before["issuetype"]["name"]
            site.edit(
                key, who, issuetype={"name": rng.choice([t for t in ISSUE_TYPES if t != current])}
            )
        elif op == "components":
            current = sorted(c["name"] for c in before.get("components") or [])
            choices = [
                c for c in (["Backend"], ["Frontend"], ["Backend", "Frontend"], []) if c != current
            ]
            site.edit(key, who, components=[{"name": name} for name in rng.choice(choices)])
        else:
            raise AssertionError(f"unknown op {op}")
        return op

    def _worklog(self, site: Site, key: str, op: str, n: int, rng: random.Random, who) -> str:
        """Log time, or edit or delete a worklog (`worklog_copy_edit`: the sync's copy)."""
        if op != "worklog":
            mine = site.own_worklogs(key, copies=op == "worklog_copy_edit")
            if not mine:
                op = "worklog"
            else:
                target = rng.choice(mine)
                path = f"/issue/{key}/worklog/{target['id']}"
                if op == "worklog_delete":
                    site.ok("DELETE", path, who=who)
                else:
                    text = f"{site.text(target.get('comment'))} edited in round {n}"
                    body = {
                        "timeSpentSeconds": 60 * rng.randint(1, 240),
                        "comment": site.rich(text),
                    }
                    site.ok("PUT", path, who=who, json=body)
                return op
        body = {
            "timeSpentSeconds": 60 * rng.randint(1, 480),
            "started": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(8, 17):02d}:00:00.000+0000",
            "comment": site.rich(f"Work of round {n}"),
        }
        site.ok("POST", f"/issue/{key}/worklog", who=who, json=body)
        return op

    def attach_or_detach(self, site: Site, key: str, before: dict, n, rng, who) -> str:
        """A person attaches a new file, or deletes one the issue has (its copy follows)."""
        present = before.get("attachment") or []
        if present and rng.random() < 0.4:
            gone = rng.choice(present)
            site.ok("DELETE", f"/attachment/{gone['id']}", who=who)
            return "attachment_delete"
        content = rng.randbytes(rng.randint(1, 50_000))
        files = [("file", (f"round-{n}.bin", content, "application/octet-stream"))]
        headers = {"X-Atlassian-Token": "no-check"}
        site.ok("POST", f"/issue/{key}/attachments", who=who, files=files, headers=headers)
        return "attachment_add"


def assert_converged_without_ping_pong(rounds: Rounds) -> None:
    local, partner = rounds.local, rounds.partner
    assert local.snapshot(rounds.key) == partner.snapshot(rounds.remote_key)
    for site, key in ((local, rounds.key), (partner, rounds.remote_key)):
        own = {c["id"] for c in site.own_comments(key)}
        for comment in site.comments(key):
            headers = site.text(comment["body"]).count("wrote:")
            assert headers <= (0 if comment["id"] in own else 1), (
                f"a comment with {headers} 'wrote:' headers: {site.text(comment['body'])!r}"
            )
        own = {w["id"] for w in site.own_worklogs(key)}
        for worklog in site.worklogs(key):
            headers = site.text(worklog.get("comment")).count("logged:")
            assert headers == (0 if worklog["id"] in own else 1), (
                f"a worklog with {headers} 'logged:' headers: {worklog.get('comment')!r}"
            )
    total_writes = local.writes() + partner.writes()
    assert total_writes == rounds.genuine, (
        f"{total_writes} writes for {rounds.genuine} genuine changes ({rounds.done}); "
        f"local: {local.sync_writes()}; partner: {partner.sync_writes()}"
        + (f"; {rounds.explain()}" if rounds.explain else "")
    )
    deliveries = len(rounds.statuses())
    time.sleep(5)
    assert len(rounds.statuses()) == deliveries, "deliveries kept coming: ping-pong"
    again = local.writes() + partner.writes()
    assert again == total_writes, "writes kept coming: ping-pong"
    assert not [s for s in rounds.statuses() if s in ("dead", "failed")]
