"""Moving an issue to a status through its workflow, one transition at a time.

Jira changes a status only by a transition, and only the transitions out of the issue's
current status are listed (`GET .../transitions`); a workflow may need several steps (To Do
-> In Progress -> In Review -> Done). `transition_to` takes the direct transition when there
is one (one GET and one POST, as ever); otherwise it finds a path breadth-first over the
workflow as far as it is known, applying one step at a time and re-reading the transitions
after each. What each step shows of the workflow is kept in the shared cache for an hour (per
site, project and issue type), so a workflow is explored once for every worker; a stale
memory mostly corrects itself, since every step goes by the transitions Jira lists at that
moment, and is forgotten after the hour. A status no path reaches is reported
(and an issue moved while looking is taken back where it was). A transition screen's
required fields are filled by the caller's `screen_value`, else with the first allowed value
(a resolution: "Done" when allowed).
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from jiraapi.client import JiraClient
from jiraapi.errors import JiraPermanentError

logger = logging.getLogger(__name__)

MAX_STEPS = 6  # transitions one move may take (exploring included)
DEFAULT_RESOLUTION = "Done"
WORKFLOW_MEMORY_SECONDS = 3600
# Bumped by `workflows_forget`: this process's keys then name a fresh memory.
_generation = 0

# A workflow as learned: {status (lower case): {status one transition on (lower case): name}}
Graph = dict[str, dict[str, str]]
# A workflow's statuses: {status (lower case): (name, status category key)}
Statuses = dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Moved:
    """How a move ended: `error` (None when the status was reached), the status the issue is
    at now when the move changed it (`reached`), and the status a refused step was taking
    the issue to (`refused`: its echo lock is not needed)."""

    error: str | None = None
    reached: str | None = None
    refused: str | None = None


ScreenValue = Callable[[str], Any]  # a screen field id -> the value to send, or None
BeforeStep = Callable[[str, str | None], None]  # (to status, from status or None) -> None


def transition_to(
    client: JiraClient,
    key: str,
    status: str,
    *,
    screen_value: ScreenValue | None = None,
    before_step: BeforeStep | None = None,
    max_steps: int = MAX_STEPS,
) -> Moved:
    """Move issue `key` to `status` (by name), by as many transitions as its workflow needs."""
    walk = _Walk(client, key, screen_value, before_step)
    available = walk.read()
    direct = _leading_to(available, status)
    if direct is not None:
        return walk.take(direct, None)
    issue = client.get_issue(key, fields=["status", "project", "issuetype"])["fields"]
    start = str((issue.get("status") or {}).get("name") or "")
    if start.lower() == status.lower():
        return Moved(reached=start)  # already there (no transition leads to its own status)
    project = str((issue.get("project") or {}).get("key") or key.rsplit("-", 1)[0])
    issue_type = str((issue.get("issuetype") or {}).get("name") or "")
    memory = _memory_key(client.base_url, project, issue_type)
    graph = _recall(memory)
    categories = _categories(client, memory, project, issue_type)
    if categories and status.lower() not in categories:
        # Not a status of this workflow at all: say so without moving the issue anywhere.
        names = ", ".join(sorted(name for name, _ in categories.values()))
        return Moved(
            error=(
                f"status '{status}' is not in the workflow of {key} ({issue_type or '?'} in "
                f"{project}; its statuses: {names})"
            )
        )
    try:
        moved = walk.go(graph, start, status, available, max_steps, categories)
        if moved.error is None or moved.refused or not moved.reached:
            return moved
        # Not reachable: take the issue back where it was (by the way it came, now known).
        back = walk.go(graph, moved.reached, start, walk.read(), max_steps, categories)
        return Moved(error=moved.error, reached=back.reached or moved.reached, refused=back.refused)
    finally:
        _remember(memory, graph)


def _memory_key(site: str, project: str, issue_type: str) -> str:
    name = "\0".join((site.rstrip("/"), project.upper(), issue_type.lower()))
    return f"sync:workflow:{_generation}:{hashlib.sha256(name.encode()).hexdigest()[:32]}"


def _recall(memory: str) -> Graph:
    try:
        graph = cache.get(memory)
    except Exception:  # a cache outage costs exploring again, not the move
        logger.warning("sync.workflow_cache_unavailable", exc_info=True)
        return {}
    return graph if isinstance(graph, dict) else {}


def _remember(memory: str, graph: Graph) -> None:
    try:
        cache.set(memory, graph, WORKFLOW_MEMORY_SECONDS)
    except Exception:
        logger.warning("sync.workflow_cache_unavailable", exc_info=True)


def workflows_forget() -> None:
    """Forget every workflow this process learned (tests; a workflow changed by its admin)."""
    global _generation
    _generation += 1


def _to_name(transition: dict) -> str:
    return str((transition.get("to") or {}).get("name") or "")


def _leading_to(available: list[dict], status: str) -> dict | None:
    for transition in available:
        if _to_name(transition).lower() == status.lower():
            return transition
    return None


def _learn(graph: Graph, status: str, available: list[dict]) -> None:
    graph[status.lower()] = {_to_name(t).lower(): _to_name(t) for t in available}


def _paths(graph: Graph, start: str) -> tuple[dict[str, str], dict[str, int]]:
    """Breadth-first over the known workflow from `start`: for each status reached, the first
    step of a shortest path to it and that path's length (in the order they were reached)."""
    first: dict[str, str] = {}
    depth = {start.lower(): 0}
    queue = deque([start.lower()])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, {}):
            if nxt not in depth:
                depth[nxt] = depth[node] + 1
                first[nxt] = first.get(node, nxt)
                queue.append(nxt)
    return first, depth


def _next_hop(graph: Graph, start: str, goal: Callable[[str], bool]) -> str | None:
    """The first status on a shortest known path from `start` to a status `goal` accepts."""
    first, _ = _paths(graph, start)
    return next((hop for node, hop in first.items() if goal(node)), None)


# Status categories in the order work moves through them.
_CATEGORY_RANK = {"new": 0, "indeterminate": 1, "done": 2}


def _explore_hop(graph: Graph, start: str, status: str, categories: Statuses) -> str | None:
    """The first step towards the unexplored status most likely to lead to `status`: the one
    whose category is nearest to the goal's (In Review before To Do on the way to Done), then
    the nearest. Exploring moves the issue, so it must not wander (each step is a write and
    a notification at the issue's site)."""

    def rank(name: str) -> int:
        return _CATEGORY_RANK.get(categories.get(name, ("", ""))[1], 1)

    goal = rank(status.lower())
    first, depth = _paths(graph, start)
    unexplored = [(abs(rank(n) - goal), depth[n], n) for n in first if n not in graph]
    return first[min(unexplored)[2]] if unexplored else None


def _categories(client: JiraClient, memory: str, project: str, issue_type: str) -> Statuses:
    """The statuses of the issue type's workflow (lower-case name -> (name, category key)),
    from `GET project/{key}/statuses`, remembered with the workflow; empty if Jira will not
    say (then nothing is ruled out)."""
    remembered = _recall(memory + ":statuses")
    if remembered:
        return remembered
    try:
        per_type = client.get_project_statuses(project)
    except JiraPermanentError:
        return {}
    found: Statuses = {}
    for entry in per_type if isinstance(per_type, list) else []:
        if not isinstance(entry, dict) or str(entry.get("name", "")).lower() != issue_type.lower():
            continue
        for st in entry.get("statuses") or []:
            if isinstance(st, dict) and st.get("name"):
                category = (st.get("statusCategory") or {}).get("key") or ""
                found[str(st["name"]).lower()] = (str(st["name"]), str(category))
    if found:
        _remember(memory + ":statuses", found)
    return found


def _reachable(graph: Graph, start: str) -> list[str]:
    names = {k: v for edges in graph.values() for k, v in edges.items()}
    first, _ = _paths(graph, start)
    return sorted(names.get(s, s) for s in first if s != start.lower())


class _Walk:
    """One issue being moved: the calls to Jira, step by step."""

    def __init__(self, client, key, screen_value, before_step) -> None:
        self.client: JiraClient = client
        self.key: str = key
        self.screen_value = screen_value
        self.before_step = before_step

    def read(self) -> list[dict]:
        return self.client.get_transitions(self.key, with_fields=True)

    def go(
        self,
        graph: dict,
        current: str,
        status: str,
        available: list[dict],
        limit: int,
        categories: Statuses | None = None,
    ) -> Moved:
        start, moves = current, 0
        while True:
            _learn(graph, current, available)
            transition = _leading_to(available, status)
            if transition is None:
                hop = _next_hop(graph, current, lambda s: s == status.lower())
                if hop is None:  # explore: a status whose ways on are unknown yet
                    hop = _explore_hop(graph, current, status, categories or {})
                if hop is None:
                    reachable = ", ".join(_reachable(graph, start)) or "none"
                    error = (
                        f"status '{status}' cannot be reached from '{start}' in the workflow of "
                        f"{self.key} (reachable: {reachable})"
                    )
                    return Moved(error=error, reached=current if moves else None)
                transition = next(t for t in available if _to_name(t).lower() == hop)
            if moves >= limit:
                error = (
                    f"status '{status}' not reached from '{start}' within {limit} transitions; "
                    f"{self.key} is at '{current}'"
                )
                return Moved(error=error, reached=current if moves else None)
            step = self.take(transition, current)
            moves += 1
            if step.error is not None:
                return Moved(
                    step.error, reached=current if moves > 1 else None, refused=step.refused
                )
            current = _to_name(transition)
            if current.lower() == status.lower():
                return Moved(reached=current)
            available = self.read()

    def take(self, transition: dict, current: str | None) -> Moved:
        """One transition, with its screen's required fields; Jira's refusal is reported."""
        to = _to_name(transition)
        if self.before_step is not None:
            self.before_step(to, current)
        fields = self.screen_fields(transition)
        try:
            self.client.transition_issue(self.key, transition["id"], fields or None)
        except JiraPermanentError as exc:
            if exc.status != 400:
                raise
            error = (
                f"Jira refused the transition '{transition.get('name') or transition['id']}' of "
                f"{self.key} to '{to}': {exc.jira_message}"
            )
            return Moved(error=error, refused=to)
        return Moved(reached=to)

    def screen_fields(self, transition: dict) -> dict[str, Any]:
        """The values for the required fields of the transition's screen (only those)."""
        out: dict[str, Any] = {}
        for field_id, meta in (transition.get("fields") or {}).items():
            if not isinstance(meta, dict) or not meta.get("required"):
                continue
            value = self.screen_value(field_id) if self.screen_value is not None else None
            allowed = [v for v in meta.get("allowedValues") or [] if isinstance(v, dict)]
            if value is not None and allowed and not _allowed(value, allowed):
                value = None  # not one of this screen's values: chosen below instead
            if value is None and allowed and not meta.get("hasDefaultValue"):
                value = _default_choice(field_id, allowed)  # (with a default, Jira's stands)
            if value is not None:
                out[field_id] = value
        return out


def _label(value: dict) -> str:
    return str(value.get("name") or value.get("value") or "").lower()


def _allowed(value: Any, allowed: list[dict]) -> bool:
    if not isinstance(value, dict):
        return False
    if "id" in value:
        return any(str(v.get("id")) == str(value["id"]) for v in allowed)
    return _label(value) in {_label(v) for v in allowed}


def _default_choice(field_id: str, allowed: list[dict]) -> dict:
    if field_id == "resolution":
        for value in allowed:
            if _label(value) == DEFAULT_RESOLUTION.lower():
                return {"name": value.get("name")}
    return {"id": str(allowed[0].get("id"))}
