"""Rendering stored records as Jira REST JSON: users, issues, fields, comments, changelogs.

Renderers produce REST v2 ``self`` links; REST v3 answers are rewritten by the HTTP layer.
``version == "3"`` turns stored wiki text into ADF.
"""

from __future__ import annotations

import copy
import hashlib
import html
import re
from typing import Any
from urllib.parse import quote

from . import adf
from .clock import fmt_ts
from .model import (
    CUSTOM_FIELDS,
    CUSTOM_SCHEMA,
    DC_AGILE_FIELDS,
    DC_EPIC_LINK,
    DC_EPIC_NAME,
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    SUBTASK_TYPE,
    SYSTEM_FIELDS,
    hierarchy_level,
)
from .worklogs import format_duration


class RenderMixin:
    """JSON views of the store's records (mixed into :class:`jirasim.store.Store`)."""

    def user_json(self, acct: str | None, *, reveal: bool = False) -> dict | None:
        """A user as REST and webhooks show them. With the `hide_emails` option the
        `emailAddress` key is absent (Cloud's profile visibility, a Data Center site's hidden
        e-mail setting) unless the viewer is the user themself; `reveal` shows it anyway
        (the simulator's own control endpoints)."""
        if not acct:
            return None
        u = self.users.get(acct)
        if u is None:
            return None
        out = self._user_fields(u)
        if not (reveal or self.email_visible(u["accountId"])):
            del out["emailAddress"]
        return out

    def _user_fields(self, u: dict) -> dict:
        avatar = "https://avatar.example/" + hashlib.sha256(u["email"].encode()).hexdigest()[:32]
        avatars = {s: f"{avatar}?s={s.split('x')[0]}" for s in ("48x48", "24x24", "16x16", "32x32")}
        if self.cloud:
            return {
                "self": f"{self.base_url}/rest/api/2/user?accountId={u['accountId']}",
                "accountId": u["accountId"],
                "emailAddress": u["email"],
                "avatarUrls": avatars,
                "displayName": u["displayName"],
                "active": u["active"],
                "timeZone": u["timeZone"],
                "accountType": "atlassian",
            }
        return {
            "self": f"{self.base_url}/rest/api/2/user?username={u['name']}",
            "name": u["name"],
            "key": u["key"],
            "emailAddress": u["email"],
            "avatarUrls": avatars,
            "displayName": u["displayName"],
            "active": u["active"],
            "timeZone": u["timeZone"],
        }

    def myself_json(self, user: dict) -> dict:
        out = self.user_json(user["accountId"], reveal=True) or {}  # one's own: always
        out["locale"] = "en_US"
        out["groups"] = {"size": 1, "items": []}
        out["applicationRoles"] = {"size": 1, "items": []}
        out["expand"] = "groups,applicationRoles"
        return out

    def issuetype_json(self, tid: str) -> dict:
        for i, name, desc, sub, avatar in ISSUE_TYPES:
            if i == tid:
                out = {
                    "self": f"{self.base_url}/rest/api/2/issuetype/{i}",
                    "id": i,
                    "description": desc,
                    "iconUrl": f"{self.base_url}/secure/viewavatar?size=medium&avatarId={avatar}"
                    "&avatarType=issuetype",
                    "name": name,
                    "subtask": sub,
                    "avatarId": avatar,
                }
                if self.cloud:
                    out["hierarchyLevel"] = hierarchy_level(i)
                return out
        raise KeyError(tid)

    def priority_json(self, pid: str | None) -> dict | None:
        for i, name, icon in PRIORITIES:
            if i == pid:
                return {
                    "self": f"{self.base_url}/rest/api/2/priority/{i}",
                    "iconUrl": f"{self.base_url}/images/icons/priorities/{icon}.svg",
                    "name": name,
                    "id": i,
                }
        return None

    def resolution_json(self, rid: str | None) -> dict | None:
        for i, name, desc in RESOLUTIONS:
            if i == rid:
                return {
                    "self": f"{self.base_url}/rest/api/2/resolution/{i}",
                    "id": i,
                    "description": desc,
                    "name": name,
                }
        return None

    def status_json(self, sid: str) -> dict:
        _, name, cat = self.statuses[sid]
        c = STATUS_CATEGORIES[cat]
        return {
            "self": f"{self.base_url}/rest/api/2/status/{sid}",
            "description": "",
            "iconUrl": f"{self.base_url}/images/icons/statuses/generic.png",
            "name": name,
            "id": sid,
            "statusCategory": {"self": f"{self.base_url}/rest/api/2/statuscategory/{c['id']}", **c},
        }

    def project_json(self, proj: dict, full: bool = False) -> dict:
        pid = proj["id"]
        out = {
            "self": f"{self.base_url}/rest/api/2/project/{pid}",
            "id": pid,
            "key": proj["key"],
            "name": proj["name"],
            "projectTypeKey": "software",
            "avatarUrls": {
                s: f"{self.base_url}/secure/projectavatar?pid={pid}&size={s}"
                for s in ("48x48", "24x24", "16x16", "32x32")
            },
        }
        if self.cloud:
            out["simplified"] = False
        if full:
            out["issueTypes"] = [self.issuetype_json(t[0]) for t in ISSUE_TYPES]
            out["components"] = [self.component_json(c) for c in proj["components"]]
            out["versions"] = [self.version_json(proj, v) for v in proj["versions"]]
            out["lead"] = self.user_json(proj.get("lead"))
            out["description"] = ""
        return out

    def component_json(self, comp: dict) -> dict:
        return {
            "self": f"{self.base_url}/rest/api/2/component/{comp['id']}",
            "id": comp["id"],
            "name": comp["name"],
            "description": comp.get("description", ""),
        }

    def version_json(self, proj: dict, v: dict, embedded: bool = False) -> dict:
        """A version; `embedded`: as an issue's fixVersions/versions show it, without the
        projectId that the version resources carry."""
        out = {
            "self": f"{self.base_url}/rest/api/2/version/{v['id']}",
            "id": v["id"],
            "description": v.get("description", ""),
            "name": v["name"],
            "archived": v.get("archived", False),
            "released": v.get("released", False),
        }
        for date in ("releaseDate", "startDate"):
            if v.get(date):
                out[date] = v[date]
        if not embedded:
            out["projectId"] = int(proj["id"])
        return out

    def _text(self, value: str | None, version: str) -> Any:
        return adf.wiki_to_adf(value) if version == "3" else value

    def _rich(self, kept: dict | None, value: str | None, version: str) -> Any:
        """Rich text: in REST v3 the ADF the site kept as given (``store_adf``), else the
        stored wiki text rendered; REST v2 and webhooks always get the wiki text."""
        if version == "3" and kept is not None:
            return copy.deepcopy(kept)
        return self._text(value, version)

    def custom_json(self, fid: str, value: Any, version: str, kept: dict | None = None) -> Any:
        if value is None:
            return None
        name, kind, options = CUSTOM_FIELDS[fid]
        if kind == "option":
            label = dict(options)[value]
            return {
                "self": f"{self.base_url}/rest/api/2/customFieldOption/{value}",
                "value": label,
                "id": value,
            }
        if kind == "textarea":
            return self._rich(kept, value, version)
        return value

    def comment_json(
        self,
        issue: dict,
        c: dict,
        version: str = "2",
        webhook: bool = False,
        properties: bool = False,
    ) -> dict:
        """A comment as REST and webhooks show it; `properties`: `expand=properties`."""
        out = {
            "self": f"{self.base_url}/rest/api/2/issue/{issue['id']}/comment/{c['id']}",
            "id": c["id"],
            "author": self.user_json(c["author"]),
            "body": self._rich(c.get("adf"), c["body"], version),
            "updateAuthor": self.user_json(c["updateAuthor"]),
            "created": fmt_ts(c["created"]),
            "updated": fmt_ts(c["updated"]),
        }
        visibility = c.get("visibility")
        if visibility:
            out["visibility"] = dict(visibility)
            if self.cloud and visibility["type"] == "group":
                out["visibility"]["identifier"] = visibility["value"]
        if self.cloud:
            out["jsdPublic"] = not c.get("internal")
        if properties:
            internal = c.get("internal")
            out["properties"] = (
                []
                if internal is None
                else [{"key": "sd.public.comment", "value": {"internal": internal}}]
            )
        return out

    def worklog_json(self, issue: dict, w: dict, version: str = "2") -> dict:
        """A worklog as REST and webhooks show it (no `comment` key when it has none)."""
        out = {
            "self": f"{self.base_url}/rest/api/2/issue/{issue['id']}/worklog/{w['id']}",
            "author": self.user_json(w["author"]),
            "updateAuthor": self.user_json(w["updateAuthor"]),
        }
        if w["comment"]:
            out["comment"] = self._rich(w.get("adf"), w["comment"], version)
        out.update(
            created=fmt_ts(w["created"]),
            updated=fmt_ts(w["updated"]),
            started=fmt_ts(w["started"]),
            timeSpent=format_duration(w["seconds"]),
            timeSpentSeconds=w["seconds"],
            id=w["id"],
            issueId=issue["id"],
        )
        if w.get("visibility"):
            out["visibility"] = dict(w["visibility"])
        return out

    def _time_fields(self, issue: dict) -> dict:
        """`timespent`, `timeestimate`, `timetracking`, `progress` from the worklogs."""
        spent = self.time_spent(issue)
        left = issue.get("timeestimate")
        tracking: dict[str, Any] = {}
        if left is not None:
            tracking.update(remainingEstimate=format_duration(left), remainingEstimateSeconds=left)
        if spent is not None:
            tracking.update(timeSpent=format_duration(spent), timeSpentSeconds=spent)
        total = (spent or 0) + (left or 0)
        progress: dict[str, Any] = {"progress": spent or 0, "total": total}
        if total:
            progress["percent"] = int((spent or 0) * 100 / total)
        return {
            "timespent": spent,
            "aggregatetimespent": spent,
            "timeestimate": left,
            "aggregatetimeestimate": left,
            "timetracking": tracking,
            "progress": progress,
            "aggregateprogress": dict(progress),
        }

    def attachment_json(self, att: dict) -> dict:
        """An attachment as Jira shows it; `content` is where its bytes are read (Cloud: the
        REST content resource; Data Center: the /secure/attachment servlet)."""
        aid = att["id"]
        if self.cloud:
            content = f"{self.base_url}/rest/api/2/attachment/content/{aid}"
        else:
            content = f"{self.base_url}/secure/attachment/{aid}/{quote(att['filename'], safe='')}"
        return {
            "self": f"{self.base_url}/rest/api/2/attachment/{aid}",
            "id": aid,
            "filename": att["filename"],
            "author": self.user_json(att["author"]),
            "created": fmt_ts(att["created"]),
            "size": att["size"],
            "mimeType": att["mimeType"],
            "content": content,
        }

    def _issue_ref(self, other: dict) -> dict:
        return {
            "id": other["id"],
            "key": other["key"],
            "self": f"{self.base_url}/rest/api/2/issue/{other['id']}",
            "fields": {
                "summary": other["summary"],
                "status": self.status_json(other["status"]),
                "priority": self.priority_json(other["priority"]),
                "issuetype": self.issuetype_json(other["issuetype"]),
            },
        }

    def issue_fields(
        self, issue: dict, version: str = "2", webhook: bool = False, comments: bool = False
    ) -> dict:
        """Every field of an issue; long because it is one literal in Jira's field order."""
        proj = self.project_of(issue)
        comps = {c["id"]: c for c in proj["components"]}
        vers = {v["id"]: v for v in proj["versions"]}
        base = f"{self.base_url}/rest/api/2/issue/{issue['key']}"
        kept = issue.get("adf") or {}
        f: dict[str, Any] = {
            "issuetype": self.issuetype_json(issue["issuetype"]),
            "timespent": None,
            "project": self.project_json(proj),
            "fixVersions": [
                self.version_json(proj, vers[v], embedded=True) for v in issue["fixVersions"]
            ],
            "aggregatetimespent": None,
            "resolution": self.resolution_json(issue["resolution"]),
            "resolutiondate": fmt_ts(issue["resolutiondate"]),
            "workratio": -1,
            "watches": {
                "self": f"{base}/watchers",
                "watchCount": len(issue["watchers"]),
                "isWatching": True,
            },
            "lastViewed": fmt_ts(issue.get("lastViewed")),
            "created": fmt_ts(issue["created"]),
            "priority": self.priority_json(issue["priority"]),
            "labels": list(issue["labels"]),
            "timeestimate": None,
            "aggregatetimeoriginalestimate": None,
            "versions": [
                self.version_json(proj, vers[v], embedded=True) for v in issue["versions"]
            ],
            "issuelinks": self.issuelinks_field(issue),
            "assignee": self.user_json(issue["assignee"]),
            "updated": fmt_ts(issue["updated"]),
            "status": self.status_json(issue["status"]),
            "components": [self.component_json(comps[c]) for c in issue["components"]],
            "timeoriginalestimate": None,
            "description": self._rich(kept.get("description"), issue["description"], version),
            "timetracking": {},
            "security": None,
            "aggregatetimeestimate": None,
            "attachment": [self.attachment_json(a) for a in issue.get("attachments") or ()],
            "summary": issue["summary"],
            "creator": self.user_json(issue["creator"]),
            "subtasks": [
                self._issue_ref(self.issues[s])
                for s in self._subtask_ids(issue)
                if s in self.issues
            ],
            "reporter": self.user_json(issue["reporter"]),
            "aggregateprogress": {"progress": 0, "total": 0},
            "environment": self._rich(kept.get("environment"), issue["environment"], version),
            "duedate": issue["duedate"],
            "progress": {"progress": 0, "total": 0},
            "votes": {"self": f"{base}/votes", "votes": 0, "hasVoted": False},
        }
        if self.cloud:  # a Cloud field (2019); Data Center has no such field
            f = {"statuscategorychangedate": fmt_ts(issue["statuscategorychangedate"]), **f}
        parent = self.issues.get(issue.get("parent") or "")
        if parent is not None and (self.cloud or issue["issuetype"] == SUBTASK_TYPE):
            f["parent"] = self._issue_ref(parent)
        if not self.cloud:
            # Jira Software on Data Center: a standard issue's epic is its Epic Link (the
            # epic's key); an Epic has an Epic Name.
            epic = parent if issue["issuetype"] != SUBTASK_TYPE else None
            f[DC_EPIC_LINK] = epic["key"] if epic is not None else None
            f[DC_EPIC_NAME] = issue.get("epic_name")
        for fid in CUSTOM_FIELDS:
            f[fid] = self.custom_json(fid, issue["custom"].get(fid), version, kept.get(fid))
        f.update(self._time_fields(issue))
        if not (webhook and self.cloud) or comments:
            f.update(self._comment_fields(issue, version))
        return f

    def _comment_fields(self, issue: dict, version: str) -> dict:
        """The ``comment`` and ``worklog`` fields (left out of Cloud issue webhooks)."""
        shown = issue["comments"]
        cap = self.options.comment_page_size
        if cap:  # only the first page; `total` counts them all
            shown = shown[:cap]
        comments_json = [self.comment_json(issue, c, version) for c in shown]
        page: dict[str, Any] = {"comments": comments_json}
        if self.cloud:  # Cloud names the comment resource (by issue id); Data Center does not
            page["self"] = f"{self.base_url}/rest/api/2/issue/{issue['id']}/comment"
        page.update(maxResults=cap or len(comments_json), total=len(issue["comments"]), startAt=0)
        logs = self._worklogs(issue)
        return {
            "comment": page,
            # Jira embeds the first 20 worklogs; `total` counts them all.
            "worklog": {
                "startAt": 0,
                "maxResults": 20,
                "total": len(logs),
                "worklogs": [self.worklog_json(issue, w, version) for w in logs[:20]],
            },
        }

    def issue_json(
        self,
        issue: dict,
        version: str = "2",
        fields: list[str] | None = None,
        expand: str | None = None,
        properties: list[str] | None = None,
    ) -> dict:
        all_fields = self.issue_fields(issue, version)
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": issue["id"],
            "self": f"{self.base_url}/rest/api/{version}/issue/{issue['id']}",
            "key": issue["key"],
            "fields": select_fields(all_fields, fields),
        }
        expands = {e.strip() for e in (expand or "").split(",") if e.strip()}
        if "changelog" in expands:
            hist = [self.history_json(h) for h in issue["history"]]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(hist),
                "total": len(hist),
                "histories": hist,
            }
        if "transitions" in expands:
            out["transitions"] = self.transitions_json(issue)["transitions"]
        if "renderedFields" in expands:
            out["renderedFields"] = self._rendered_fields(issue)
        if "names" in expands:
            out["names"] = {k: self.field_name(k) for k in out["fields"]}
        if properties:
            props = issue["properties"]
            wanted = props.keys() if "*all" in properties else properties
            out["properties"] = {k: props[k] for k in wanted if k in props}
        return out

    def _rendered_fields(self, issue: dict) -> dict:
        """``expand=renderedFields``: description, environment and comments as HTML."""
        return {
            "description": _render_html(issue["description"]),
            "environment": _render_html(issue["environment"]),
            "comment": {
                "comments": [
                    {**self.comment_json(issue, c, "2"), "body": _render_html(c["body"])}
                    for c in issue["comments"]
                ]
            },
        }

    def field_name(self, fid: str) -> str:
        if fid in CUSTOM_FIELDS:
            return CUSTOM_FIELDS[fid][0]
        if fid in DC_AGILE_FIELDS and not self.cloud:
            return DC_AGILE_FIELDS[fid][0]
        return SYSTEM_FIELDS.get(fid, (fid,))[0]

    def history_json(self, h: dict) -> dict:
        return {
            "id": h["id"],
            "author": self.user_json(h["author"]),
            "created": fmt_ts(h["created"]),
            "items": [self.item_json(i) for i in h["items"]],
        }

    def item_json(self, item: dict) -> dict:
        out = {"field": item["field"], "fieldtype": item["fieldtype"]}
        if self.cloud:
            out["fieldId"] = item["fieldId"]
        for k in ("from", "fromString", "to", "toString"):
            out[k] = item[k]
        if self.cloud and item["fieldId"] in ("assignee", "reporter"):
            out["tmpFromAccountId"] = item.get("fromAcct")
            out["tmpToAccountId"] = item.get("toAcct")
        return out

    def fields_json(self) -> list[dict]:
        out = []
        for fid, (name, stype, orderable, searchable, clauses) in SYSTEM_FIELDS.items():
            if fid == "statuscategorychangedate" and not self.cloud:
                continue  # a Cloud-only field
            out.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "custom": False,
                    "orderable": orderable,
                    "navigable": True,
                    "searchable": searchable,
                    "clauseNames": clauses,
                    "schema": {"type": stype, "system": fid},
                }
            )
        customs = [
            (fid, name, *CUSTOM_SCHEMA[kind]) for fid, (name, kind, _) in CUSTOM_FIELDS.items()
        ]
        if not self.cloud:  # Jira Software's Epic Link and Epic Name
            customs += [(fid, *spec) for fid, spec in DC_AGILE_FIELDS.items()]
        for fid, name, stype, custom in customs:
            num = int(fid.split("_")[1])
            out.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{num}]", name],
                    "schema": {"type": stype, "custom": custom, "customId": num},
                }
            )
        return out

    def remote_link_json(self, issue: dict, link: dict) -> dict:
        out = {
            "id": link["id"],
            "self": f"{self.base_url}/rest/api/2/issue/{issue['key']}/remotelink/{link['id']}",
        }
        out.update({k: v for k, v in link.items() if k not in ("id",)})
        return out


def select_fields(all_fields: dict, wanted: list[str] | None) -> dict:
    if wanted is None:
        return all_fields
    wanted = [w.strip() for w in wanted if w and w.strip()]
    if not wanted:
        return all_fields
    include_all = any(w in ("*all", "*navigable") for w in wanted)
    picked = set(all_fields) if include_all else set()
    for w in wanted:
        if w.startswith("-"):
            picked.discard(w[1:])
        elif not w.startswith("*"):
            picked.add(w)
    return {k: v for k, v in all_fields.items() if k in picked}


def _render_html(text):
    """Wiki text as Jira's rendered HTML: paragraphs, line breaks, escaped."""
    if not text:
        return text
    paras = re.split(r"\n\s*\n", text)
    return "".join("<p>" + html.escape(p).replace("\n", "<br/>\n") + "</p>" for p in paras)
