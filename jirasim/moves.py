"""Moving an issue to another project, as Jira's move (UI, or Cloud's bulk move) does it.

The id stays and the key changes; the old key keeps resolving to the issue (GET issue/OLD-1
answers the issue under its new key); components and versions, which belong to a project,
go unless the new project has ones of the same name. The change is recorded as a changelog
with a ``Key`` item (old -> new key) and a ``project`` item, and fires
``jira:issue_updated`` with ``issue_event_type_name`` ``issue_moved``. Jira Cloud's REST API
has no single-issue move; the simulator offers it as the control ``POST /_sim/move``.
"""

from __future__ import annotations

from .clock import now_ms
from .errors import ApiError


class MoveMixin:
    """Issue moves (mixed into :class:`jirasim.store.Store`)."""

    def move_issue(self, *, actor: dict, key: str, project: str) -> dict:
        with self.lock:
            issue = self.get_issue(key)
            target = self.projects.get(str(project).upper())
            if target is None:
                raise ApiError(
                    400, errors={"project": f"No project could be found with key '{project}'."}
                )
            source = self.project_of(issue)
            if target["key"] == source["key"]:
                raise ApiError(400, errors={"project": "The issue is already in this project."})
            old_key = issue["key"]
            new_key = f"{target['key']}-{target['next']}"
            target["next"] += 1
            key_item = self._item("issuekey", None, old_key, None, new_key)
            key_item["field"] = "Key"
            project_item = self._item(
                "project", source["id"], source["name"], target["id"], target["name"]
            )
            items = [key_item, project_item]
            for fid in ("components", "fixVersions", "versions"):
                pool = source["components"] if fid == "components" else source["versions"]
                new_pool = target["components"] if fid == "components" else target["versions"]
                names = {x["id"]: x["name"] for x in pool}
                by_name = {x["name"]: x["id"] for x in new_pool}
                kept = [by_name[names[v]] for v in issue[fid] if names.get(v) in by_name]
                if kept != issue[fid]:
                    items += self._diff_multi(source, fid, issue[fid], [])
                issue[fid] = kept
            issue["old_keys"] = [*issue.get("old_keys", []), old_key]
            issue["key"] = new_key
            issue["project"] = target["key"]
            self.keys[new_key] = issue["id"]  # the old key stays in `keys`: it still resolves
            ts = now_ms()
            issue["updated"] = ts
            hist = self._record(issue, actor, items, ts)
            self._emit("jira:issue_updated", "issue_moved", actor, issue, hist, ts=ts)
            return issue
