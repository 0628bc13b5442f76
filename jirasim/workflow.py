"""The workflow: which transitions an issue has, and moving it (status and resolution)."""

from __future__ import annotations

from .clock import now_ms
from .errors import ApiError
from .model import DEFAULT_RESOLUTION, RESOLUTIONS
from .parse import CANNOT_SET


class WorkflowMixin:
    """Transitions between To Do, In Progress and Done (mixed into ``Store``)."""

    def available_transitions(self, issue: dict) -> list[tuple]:
        cur = self.statuses[issue["status"]][1]
        out = []
        for t in self.transitions:
            tid, name, frm, to, ev = t
            if to == cur:
                continue
            if frm is None or cur in frm:
                out.append(t)
        return out

    def transitions_json(self, issue: dict, expand_fields: bool = False) -> dict:
        out = []
        for tid, name, _frm, to, _ev in self.available_transitions(issue):
            sid = self.status_id(to)
            t = {
                "id": tid,
                "name": name,
                "to": self.status_json(sid),
                "hasScreen": False,
                "isGlobal": _frm is None,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            if expand_fields:
                t["fields"] = {}
                if self.status_cat(sid) == "done":
                    t["fields"]["resolution"] = {
                        "required": False,
                        "schema": {"type": "resolution", "system": "resolution"},
                        "name": "Resolution",
                        "key": "resolution",
                        "operations": ["set"],
                        "allowedValues": [self.resolution_json(r[0]) for r in RESOLUTIONS],
                    }
            out.append(t)
        return {"expand": "transitions", "transitions": out}

    def transition(self, *, actor: dict, key: str, body: dict, version: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict) or not isinstance(body.get("transition"), dict):
                raise ApiError(400, ["Missing 'transition' identifier"])
            _, _, _, to_name, type_name = self._choose_transition(issue, body["transition"])
            new_sid = self.status_id(to_name)
            resolution = self._transition_resolution(dict(body.get("fields") or {}), new_sid)
            ts = now_ms()
            old_sid = issue["status"]
            old_cat, new_cat = self.status_cat(old_sid), self.status_cat(new_sid)
            items = self._status_change(issue, new_sid, resolution, ts)
            issue["status"] = new_sid
            if old_cat != new_cat:
                issue["statuscategorychangedate"] = ts
            issue["updated"] = ts
            hist = self._record(issue, actor, items, ts)
            self._emit("jira:issue_updated", type_name, actor, issue, hist, ts=ts)
            for c in (body.get("update") or {}).get("comment", []) or []:
                if isinstance(c, dict) and "add" in c:
                    self._add_comment(
                        actor, issue, (c["add"] or {}).get("body"), version, c["add"] or {}
                    )

    def _choose_transition(self, issue: dict, ref: dict) -> tuple:
        """The available transition named by ``{"id": ...}`` (or by name), else 400."""
        tid = str(ref.get("id", ""))
        tname = ref.get("name")
        chosen = None
        for t in self.available_transitions(issue):
            if t[0] == tid or (not tid and tname and t[1].lower() == str(tname).lower()):
                chosen = t
        if chosen is None:
            raise ApiError(400, [f"Transition id '{tid or tname}' is not valid for this issue."])
        return chosen

    def _transition_resolution(self, fields: dict, new_sid: str) -> str | None:
        """The resolution set on the transition screen; any other field is an error."""
        errors = {}
        resolution = None
        if "resolution" in fields:
            if self.status_cat(new_sid) != "done":
                errors["resolution"] = CANNOT_SET.format("resolution")
            else:
                try:
                    resolution = self._named_ref(
                        fields.pop("resolution"),
                        "resolution",
                        RESOLUTIONS,
                        "The resolution selected is invalid.",
                    )
                except ApiError as e:
                    errors.update(e.errors)
        for fid in fields:
            errors.setdefault(fid, CANNOT_SET.format(fid))
        if errors:
            raise ApiError(400, errors=errors)
        return resolution

    def _status_change(self, issue: dict, new_sid: str, resolution: str | None, ts: int) -> list:
        """Changelog items for the move; sets or clears the resolution on the issue."""
        old_sid = issue["status"]
        new_cat = self.status_cat(new_sid)
        status_item = self._item(
            "status", old_sid, self.statuses[old_sid][1], new_sid, self.statuses[new_sid][1]
        )
        items = [status_item]
        res_names = {r[0]: r[1] for r in RESOLUTIONS}
        if new_cat == "done" and issue["resolution"] is None:
            rid = resolution or DEFAULT_RESOLUTION
            ritem = self._item("resolution", None, None, rid, res_names[rid])
            items = [ritem, status_item] if self.cloud else [status_item, ritem]
            issue["resolution"] = rid
            issue["resolutiondate"] = ts
        elif new_cat != "done" and issue["resolution"] is not None:
            old = issue["resolution"]
            items = [self._item("resolution", old, res_names[old], None, None), status_item]
            issue["resolution"] = None
            issue["resolutiondate"] = None
        return items
