"""The workflow: which transitions an issue has, and moving it (status and resolution).

The site's ``workflow`` option picks the transitions (``model.WORKFLOWS``): "simple" or
"multistep" (transition screens with required fields, a transition hidden by a condition).
"""

from __future__ import annotations

from .clock import now_ms
from .errors import ApiError
from .model import CUSTOM_FIELDS, DEFAULT_RESOLUTION, RESOLUTIONS, Transition
from .parse import CANNOT_SET


class WorkflowMixin:
    """Transitions between the site's statuses (mixed into ``Store``)."""

    def available_transitions(self, issue: dict, *, unavailable: bool = False) -> list[Transition]:
        """The transitions out of the issue's status; those a condition hides only when
        ``unavailable`` (Jira's ``includeUnavailableTransitions``)."""
        cur = self.statuses[issue["status"]][1]
        out = []
        for t in self.transitions:
            if t.to == cur:
                continue
            if t.condition and not unavailable:
                continue
            if t.frm is None or cur in t.frm:
                out.append(t)
        return out

    def workflow_statuses(self) -> set[str]:
        """The names of the statuses in the site's workflow: those its transitions connect,
        and in the multistep workflow also "Blocked", which no transition leads into."""
        names = {t.to for t in self.transitions}
        for t in self.transitions:
            names.update(t.frm or ())
        if self.options.workflow == "multistep":
            names.add("Blocked")
        return names

    def screen_fields(self, t: Transition) -> dict[str, bool]:
        """The fields on a transition's screen: field id -> required."""
        fields = dict(t.screen)
        if self.status_cat(self.status_id(t.to)) == "done":
            if not fields:
                # No screen: the resolution may still be given (optional; Done by default).
                fields["resolution"] = False
            for fid in self.options.transition_required_fields:
                fields[fid] = True
        return fields

    def _screen_field_meta(self, fid: str, required: bool) -> dict:
        if fid == "resolution":
            return {
                "required": required,
                "schema": {"type": "resolution", "system": "resolution"},
                "name": "Resolution",
                "key": "resolution",
                "hasDefaultValue": False,
                "operations": ["set"],
                "allowedValues": [self.resolution_json(r[0]) for r in RESOLUTIONS],
            }
        name, kind, options = CUSTOM_FIELDS.get(fid, (fid, "text", None))
        meta = {
            "required": required,
            "schema": {"type": "option" if kind == "option" else "string", "customId": 0},
            "name": name,
            "key": fid,
            "hasDefaultValue": False,
            "operations": ["set"],
        }
        if fid.startswith("customfield_"):
            meta["schema"]["customId"] = int(fid.split("_", 1)[1])
        if options:
            meta["allowedValues"] = [
                {
                    "self": f"{self.base_url}/rest/api/2/customFieldOption/{oid}",
                    "value": v,
                    "id": oid,
                }
                for oid, v in options
            ]
        return meta

    def transitions_json(
        self, issue: dict, expand_fields: bool = False, *, unavailable: bool = False
    ) -> dict:
        out = []
        for t in self.available_transitions(issue, unavailable=unavailable):
            sid = self.status_id(t.to)
            screen = dict(t.screen)
            item = {
                "id": t.id,
                "name": t.name,
                "to": self.status_json(sid),
                "hasScreen": bool(screen),
                "isGlobal": t.frm is None,
                "isInitial": False,
                "isAvailable": not t.condition,
                "isConditional": bool(t.condition),
                "isLooped": False,
            }
            if expand_fields:
                item["fields"] = {
                    fid: self._screen_field_meta(fid, required)
                    for fid, required in self.screen_fields(t).items()
                }
            out.append(item)
        return {"expand": "transitions", "transitions": out}

    def transition(self, *, actor: dict, key: str, body: dict, version: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict) or not isinstance(body.get("transition"), dict):
                raise ApiError(400, ["Missing 'transition' identifier"])
            chosen = self._choose_transition(issue, body["transition"])
            new_sid = self.status_id(chosen.to)
            given = body.get("fields") or {}
            if not isinstance(given, dict):
                raise ApiError(400, ["Can not deserialize instance of IssueFieldsBean"])
            resolution, custom = self._screen_values(issue, chosen, dict(given), version)
            ts = now_ms()
            old_sid = issue["status"]
            old_cat, new_cat = self.status_cat(old_sid), self.status_cat(new_sid)
            items = self._status_change(issue, new_sid, resolution, ts)
            for fid, value in custom.items():
                items += self._diff_items(issue, fid, issue["custom"].get(fid), value)
                issue["custom"][fid] = value
            issue["status"] = new_sid
            if old_cat != new_cat:
                issue["statuscategorychangedate"] = ts
            issue["updated"] = ts
            later = []
            if self.options.resolution_separate_changelog:
                # The resolution is set after the move (a post function, an automation rule):
                # its own history entry and event, after the status one.
                later = [i for i in items if i["fieldId"] == "resolution"]
                items = [i for i in items if i["fieldId"] != "resolution"]
            hist = self._record(issue, actor, items, ts)
            self._emit("jira:issue_updated", chosen.event, actor, issue, hist, ts=ts)
            if later:
                hist = self._record(issue, actor, later, ts)
                generic = "issue_generic" if self.cloud else "issue_updated"
                self._emit("jira:issue_updated", generic, actor, issue, hist, ts=ts)
            for c in (body.get("update") or {}).get("comment", []) or []:
                if isinstance(c, dict) and "add" in c:
                    self._add_comment(
                        actor, issue, (c["add"] or {}).get("body"), version, c["add"] or {}
                    )

    def _choose_transition(self, issue: dict, ref: dict) -> Transition:
        """The available transition named by ``{"id": ...}`` (or by name), else 400."""
        tid = str(ref.get("id", ""))
        tname = ref.get("name")
        chosen = None
        for t in self.available_transitions(issue):
            if t.id == tid or (not tid and tname and t.name.lower() == str(tname).lower()):
                chosen = t
        if chosen is None:
            raise ApiError(400, [f"Transition id '{tid or tname}' is not valid for this issue."])
        return chosen

    def _screen_values(
        self, issue: dict, t: Transition, fields: dict, version: str
    ) -> tuple[str | None, dict]:
        """The resolution and custom field values set on the transition's screen; a field
        not on the screen, an invalid value or a missing required field is a 400."""
        screen = self.screen_fields(t)
        errors: dict[str, str] = {}
        resolution = None
        custom: dict = {}
        for fid, required in screen.items():
            if required and fields.get(fid) in (None, "", [], {}):
                name = "Resolution" if fid == "resolution" else CUSTOM_FIELDS.get(fid, (fid,))[0]
                errors[fid] = f"{name} is required."
        for fid, value in fields.items():
            if fid not in screen:
                errors.setdefault(fid, CANNOT_SET.format(fid))
            elif fid in errors or value in (None, "", [], {}):
                continue
            elif fid == "resolution":
                try:
                    resolution = self._named_ref(
                        value, "resolution", RESOLUTIONS, "The resolution selected is invalid."
                    )
                except ApiError as e:
                    errors.update(e.errors)
            else:
                try:
                    custom[fid] = self.parse_field(fid, value, version, self.project_of(issue))
                except ApiError as e:
                    errors.update(e.errors)
        if errors:
            raise ApiError(400, errors=errors)
        return resolution, custom

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
