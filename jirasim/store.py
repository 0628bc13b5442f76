"""In-memory state of one simulated Jira site and every operation that changes it.

All public methods take the store lock, so the HTTP layer may call them from any thread.
Each change records a changelog history and notifies the listeners (the webhook dispatcher)
with an event, still under the lock, so payloads are rendered from a consistent snapshot.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import html
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from . import adf, jql
from .model import (
    CLOUD,
    CUSTOM_FIELDS,
    CUSTOM_SCHEMA,
    DATACENTER,
    DEFAULT_PRIORITY,
    DEFAULT_RESOLUTION,
    EDITABLE,
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    SYSTEM_FIELDS,
    TRANSITIONS,
)

DEFAULT_USER = ("admin@example.com", "secret-token")
_CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


class ApiError(Exception):
    """An answer in Jira's error shape: ``{"errorMessages": [...], "errors": {...}}``."""

    def __init__(self, status: int, messages: list[str] | None = None, errors: dict | None = None):
        super().__init__(f"{status} {messages} {errors}")
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}

    def body(self) -> dict:
        return {"errorMessages": self.messages, "errors": self.errors}


def now_ms() -> int:
    return int(time.time() * 1000)


def fmt_ts(ms: int | None) -> str | None:
    if ms is None:
        return None
    d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def ms_to_dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _account_id(email: str) -> str:
    digest = hashlib.sha256(email.lower().encode()).hexdigest()
    return f"712020:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


class Store:
    def __init__(
        self,
        *,
        flavor: str = CLOUD,
        projects: list[tuple[str, str]] | None = None,
        users: list[tuple[str, str]] | None = None,
        base_url: str = "http://127.0.0.1",
    ):
        if flavor not in (CLOUD, DATACENTER):
            raise ValueError(f"unknown flavor {flavor!r}")
        self.flavor = flavor
        self.cloud = flavor == CLOUD
        self.base_url = base_url
        self.lock = threading.RLock()
        self.listeners: list[Callable[[dict], None]] = []
        self._initial_projects = list(projects or [("TEST", "Test Project")])
        self._initial_users = list(users or [DEFAULT_USER])
        self.statuses = {sid: (sid, name, cat) for sid, name, cat in STATUSES[flavor]}
        self.status_by_name = {name.lower(): sid for sid, name, _ in STATUSES[flavor]}
        self.transitions = TRANSITIONS[flavor]
        self.reset()

    # ------------------------------------------------------------------ setup / persistence
    def reset(self) -> None:
        with self.lock:
            self.users: dict[str, dict] = {}
            self.projects: dict[str, dict] = {}
            self.issues: dict[str, dict] = {}
            self.keys: dict[str, str] = {}
            self.seq = {
                "issue": 10000,
                "comment": 10000,
                "history": 10000,
                "project": 10000,
                "link": 10000,
                "component": 10000,
                "version": 10000,
            }
            for i, (email, token) in enumerate(self._initial_users):
                self.add_user(email=email, token=token, admin=(i == 0))
            for key, name in self._initial_projects:
                self.add_project(key=key, name=name)

    def _next(self, name: str) -> str:
        self.seq[name] += 1
        return str(self.seq[name])

    def add_user(
        self, *, email: str, token: str, display_name: str | None = None, admin: bool = False
    ) -> dict:
        with self.lock:
            local = email.split("@")[0]
            acct = _account_id(email)
            user = {
                "accountId": acct,
                "name": local,
                "key": f"JIRAUSER{10000 + len(self.users)}",
                "email": email,
                "displayName": display_name or local.replace(".", " ").title(),
                "token": token,
                "active": True,
                "timeZone": "Etc/UTC",
                "admin": admin,
            }
            self.users[acct] = user
            return user

    def add_project(self, *, key: str, name: str | None = None) -> dict:
        with self.lock:
            key = key.upper()
            if key in self.projects:
                return self.projects[key]
            pid = self._next("project")
            comps = []
            for cname in ("Backend", "Frontend"):
                comps.append({"id": self._next("component"), "name": cname, "description": ""})
            versions = []
            for vname in ("1.0", "2.0"):
                versions.append(
                    {
                        "id": self._next("version"),
                        "name": vname,
                        "description": "",
                        "archived": False,
                        "released": False,
                    }
                )
            lead = next(iter(self.users.values()))["accountId"] if self.users else None
            proj = {
                "id": pid,
                "key": key,
                "name": name or key.title(),
                "next": 1,
                "components": comps,
                "versions": versions,
                "lead": lead,
            }
            self.projects[key] = proj
            return proj

    def dump(self) -> dict:
        with self.lock:
            return copy.deepcopy(
                {
                    "flavor": self.flavor,
                    "users": self.users,
                    "projects": self.projects,
                    "issues": self.issues,
                    "seq": self.seq,
                }
            )

    def load(self, data: dict) -> None:
        with self.lock:
            self.users = data["users"]
            self.projects = data["projects"]
            self.issues = data["issues"]
            self.seq = data["seq"]
            self.keys = {i["key"]: iid for iid, i in self.issues.items()}

    def save_file(self, path: str) -> None:
        with open(path, "w") as fh:
            json.dump(self.dump(), fh)

    # ------------------------------------------------------------------ users / auth
    def authenticate(self, header: str | None) -> dict | None:
        import base64

        if not header:
            return None
        with self.lock:
            scheme, _, cred = header.partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer" and not self.cloud:
                for u in self.users.values():
                    if u["token"] == cred.strip():
                        return u
                return None
            if scheme == "basic":
                try:
                    who, _, secret = base64.b64decode(cred.strip()).decode().partition(":")
                except Exception:
                    return None
                for u in self.users.values():
                    ids = {u["email"].lower()}
                    if not self.cloud:
                        ids.add(u["name"].lower())
                    if who.lower() in ids and u["token"] == secret:
                        return u
            return None

    def find_user(self, ident: str | None) -> dict | None:
        if ident is None:
            return None
        s = str(ident).lower()
        for u in self.users.values():
            if s in (
                u["accountId"].lower(),
                u["name"].lower(),
                u["email"].lower(),
                u["key"].lower(),
            ):
                return u
        return None

    # ------------------------------------------------------------------ lookups
    def get_issue(self, key_or_id: str) -> dict:
        s = str(key_or_id)
        iid = s if s in self.issues else self.keys.get(s.upper())
        if iid is None or iid not in self.issues:
            raise ApiError(404, ["Issue does not exist or you do not have permission to see it."])
        return self.issues[iid]

    def status_cat(self, sid: str) -> str:
        return self.statuses[sid][2]

    def status_id(self, name: str) -> str:
        return self.status_by_name[name.lower()]

    def project_of(self, issue: dict) -> dict:
        return self.projects[issue["project"]]

    # ------------------------------------------------------------------ rendering
    def user_json(self, acct: str | None) -> dict | None:
        if not acct:
            return None
        u = self.users.get(acct)
        if u is None:
            return None
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
        out = self.user_json(user["accountId"]) or {}
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
                    out["hierarchyLevel"] = -1 if sub else (1 if name == "Epic" else 0)
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

    def version_json(self, proj: dict, v: dict) -> dict:
        return {
            "self": f"{self.base_url}/rest/api/2/version/{v['id']}",
            "id": v["id"],
            "description": v.get("description", ""),
            "name": v["name"],
            "archived": v.get("archived", False),
            "released": v.get("released", False),
            "projectId": int(proj["id"]),
        }

    def _text(self, value: str | None, version: str) -> Any:
        return adf.wiki_to_adf(value) if version == "3" else value

    def custom_json(self, fid: str, value: Any, version: str) -> Any:
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
            return self._text(value, version)
        return value

    def comment_json(self, issue: dict, c: dict, version: str = "2", webhook: bool = False) -> dict:
        out = {
            "self": f"{self.base_url}/rest/api/2/issue/{issue['id']}/comment/{c['id']}",
            "id": c["id"],
            "author": self.user_json(c["author"]),
            "body": self._text(c["body"], version),
            "updateAuthor": self.user_json(c["updateAuthor"]),
            "created": fmt_ts(c["created"]),
            "updated": fmt_ts(c["updated"]),
        }
        if self.cloud:
            out["jsdPublic"] = True
        return out

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
        proj = self.project_of(issue)
        comps = {c["id"]: c for c in proj["components"]}
        vers = {v["id"]: v for v in proj["versions"]}
        base = f"{self.base_url}/rest/api/2/issue/{issue['key']}"
        f: dict[str, Any] = {
            "statuscategorychangedate": fmt_ts(issue["statuscategorychangedate"]),
            "issuetype": self.issuetype_json(issue["issuetype"]),
            "timespent": None,
            "project": self.project_json(proj),
            "fixVersions": [self.version_json(proj, vers[v]) for v in issue["fixVersions"]],
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
            "versions": [self.version_json(proj, vers[v]) for v in issue["versions"]],
            "issuelinks": [],
            "assignee": self.user_json(issue["assignee"]),
            "updated": fmt_ts(issue["updated"]),
            "status": self.status_json(issue["status"]),
            "components": [self.component_json(comps[c]) for c in issue["components"]],
            "timeoriginalestimate": None,
            "description": self._text(issue["description"], version),
            "timetracking": {},
            "security": None,
            "aggregatetimeestimate": None,
            "attachment": [],
            "summary": issue["summary"],
            "creator": self.user_json(issue["creator"]),
            "subtasks": [
                self._issue_ref(self.issues[s])
                for s in self._subtask_ids(issue)
                if s in self.issues
            ],
            "reporter": self.user_json(issue["reporter"]),
            "aggregateprogress": {"progress": 0, "total": 0},
            "environment": self._text(issue["environment"], version),
            "duedate": issue["duedate"],
            "progress": {"progress": 0, "total": 0},
            "votes": {"self": f"{base}/votes", "votes": 0, "hasVoted": False},
        }
        if issue.get("parent") and issue["parent"] in self.issues:
            f["parent"] = self._issue_ref(self.issues[issue["parent"]])
        for fid in CUSTOM_FIELDS:
            f[fid] = self.custom_json(fid, issue["custom"].get(fid), version)
        if not (webhook and self.cloud) or comments:
            comments_json = [self.comment_json(issue, c, version) for c in issue["comments"]]
            f["comment"] = {
                "comments": comments_json,
                "self": f"{base}/comment",
                "maxResults": len(comments_json),
                "total": len(comments_json),
                "startAt": 0,
            }
            f["worklog"] = {"startAt": 0, "maxResults": 20, "total": 0, "worklogs": []}
        return f

    def _subtask_ids(self, issue: dict) -> list[str]:
        return [i["id"] for i in self.issues.values() if i.get("parent") == issue["id"]]

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

            def render(text):
                if not text:
                    return text
                paras = re.split(r"\n\s*\n", text)
                return "".join(
                    "<p>" + html.escape(p).replace("\n", "<br/>\n") + "</p>" for p in paras
                )

            out["renderedFields"] = {
                "description": render(issue["description"]),
                "environment": render(issue["environment"]),
                "comment": {
                    "comments": [
                        {**self.comment_json(issue, c, "2"), "body": render(c["body"])}
                        for c in issue["comments"]
                    ]
                },
            }
        if "names" in expands:
            out["names"] = {k: self.field_name(k) for k in out["fields"]}
        if properties:
            props = issue["properties"]
            wanted = props.keys() if "*all" in properties else properties
            out["properties"] = {k: props[k] for k in wanted if k in props}
        return out

    def field_name(self, fid: str) -> str:
        if fid in CUSTOM_FIELDS:
            return CUSTOM_FIELDS[fid][0]
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
        for fid, (name, kind, _) in CUSTOM_FIELDS.items():
            stype, custom = CUSTOM_SCHEMA[kind]
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

    # ------------------------------------------------------------------ parsing field input
    def _user_ref(self, value: Any, fid: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError(400, errors={fid: "data was not an object"})
        # Cloud identifies people by accountId only (names were removed for GDPR); Data
        # Center by username (or user key).
        if self.cloud:
            ident = value.get("accountId") or value.get("id")
            if ident is None and (value.get("name") or value.get("emailAddress")):
                raise ApiError(400, errors={fid: "Specify the user by accountId."})
        else:
            ident = value.get("name") or value.get("key")
        if ident in (None, "", "-1") and fid == "assignee":
            return None
        u = self.find_user(ident)
        if u is not None and self.cloud and u["accountId"] != ident:
            u = None
        if u is not None and not self.cloud and ident not in (u["name"], u["key"]):
            u = None
        if u is None:
            msg = (
                "Specified user does not exist or you do not have required permissions"
                if self.cloud
                else f"User '{ident}' does not exist."
            )
            raise ApiError(400, errors={fid: msg})
        return u["accountId"]

    def _text_in(self, value: Any, fid: str, version: str) -> str | None:
        if value is None:
            return None
        if version == "3":
            if not adf.validate_adf(value):
                raise ApiError(
                    400,
                    errors={
                        fid: "Operation value must be an Atlassian Document "
                        "(see the Atlassian Document Format)"
                    },
                )
            return adf.adf_to_wiki(value)
        if not isinstance(value, str):
            raise ApiError(400, errors={fid: "Operation value must be a string"})
        return value

    def _named_ref(self, value: Any, fid: str, table: list[tuple], msg: str) -> str:
        if not isinstance(value, dict):
            raise ApiError(400, errors={fid: msg})
        for row in table:
            if ("id" in value and str(value["id"]) == row[0]) or (
                "name" in value and str(value["name"]).lower() == row[1].lower()
            ):
                return row[0]
        raise ApiError(400, errors={fid: msg})

    def _list_refs(self, value: Any, fid: str, items: list[dict], label: str) -> list[str]:
        if not isinstance(value, list):
            raise ApiError(400, errors={fid: "data was not an array"})
        out = []
        for ref in value:
            found = None
            for it in items:
                if isinstance(ref, dict) and (
                    str(ref.get("id")) == it["id"] or ref.get("name") == it["name"]
                ):
                    found = it["id"]
            if found is None:
                name = ref.get("name") or ref.get("id") if isinstance(ref, dict) else ref
                raise ApiError(400, errors={fid: f"{label} name '{name}' is not valid"})
            out.append(found)
        return out

    def parse_field(self, fid: str, value: Any, version: str, proj: dict) -> Any:
        """Turn a REST field value into the stored value, or raise ApiError(400)."""
        if fid == "summary":
            if not isinstance(value, str):
                raise ApiError(400, errors={fid: "Operation value must be a string"})
            if not value.strip():
                raise ApiError(400, errors={fid: "You must specify a summary of the issue."})
            if len(value) > 255:
                raise ApiError(400, errors={fid: "Summary must be less than 255 characters."})
            return value.replace("\n", " ")
        if fid in ("description", "environment"):
            return self._text_in(value, fid, version)
        if fid == "issuetype":
            return self._named_ref(value, fid, ISSUE_TYPES, "The issue type selected is invalid.")
        if fid == "priority":
            if value is None:
                return DEFAULT_PRIORITY
            return self._named_ref(value, fid, PRIORITIES, "The priority selected is invalid.")
        if fid == "labels":
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ApiError(400, errors={fid: "data was not an array"})
            for lab in value:
                if " " in lab:
                    raise ApiError(
                        400,
                        errors={fid: "The label '" + lab + "' contains spaces which is invalid."},
                    )
            return sorted(set(value), key=value.index)
        if fid in ("assignee", "reporter"):
            if fid == "reporter" and value is None:
                raise ApiError(400, errors={fid: "Reporter is required."})
            return self._user_ref(value, fid)
        if fid == "duedate":
            if value is None or value == "":
                return None
            try:
                dt.date.fromisoformat(str(value))
            except ValueError:
                raise ApiError(400, errors={fid: f"Error parsing date string: {value}"}) from None
            return str(value)
        if fid == "components":
            return self._list_refs(value, fid, proj["components"], "Component")
        if fid in ("fixVersions", "versions"):
            return self._list_refs(value, fid, proj["versions"], "Version")
        if fid == "parent":
            if value is None:
                return None
            if not isinstance(value, dict):
                raise ApiError(400, errors={fid: "Could not find issue by id or key."})
            ident = value.get("key") or value.get("id")
            try:
                return self.get_issue(str(ident))["id"]
            except ApiError:
                raise ApiError(400, errors={fid: "Could not find issue by id or key."}) from None
        if fid in CUSTOM_FIELDS:
            name, kind, options = CUSTOM_FIELDS[fid]
            if value is None:
                return None
            if kind == "text":
                if not isinstance(value, str):
                    raise ApiError(400, errors={fid: "Operation value must be a string"})
                if len(value) > 255:
                    raise ApiError(
                        400,
                        errors={
                            fid: "The entered text is too long. It exceeds "
                            "the allowed limit of 255 characters."
                        },
                    )
                return value
            if kind == "textarea":
                return self._text_in(value, fid, version)
            if kind == "number":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ApiError(400, errors={fid: "Operation value must be a number"})
                return float(value)
            if kind == "date":
                try:
                    dt.date.fromisoformat(str(value))
                except ValueError:
                    raise ApiError(
                        400, errors={fid: f"Error parsing date string: {value}"}
                    ) from None
                return str(value)
            if kind == "option":
                if isinstance(value, dict):
                    for oid, label in options:
                        if str(value.get("id")) == oid or value.get("value") == label:
                            return oid
                shown = value.get("value") if isinstance(value, dict) else value
                raise ApiError(400, errors={fid: f"Option value '{shown}' is not valid"})
        raise ApiError(400, errors={fid: _CANNOT_SET.format(fid)})

    def _apply_update_ops(self, issue: dict | None, update: dict, version: str, proj: dict) -> dict:
        """Fold ``update: {field: [{set|add|remove: v}]}`` into plain field values."""
        out: dict[str, Any] = {}
        for fid, ops in (update or {}).items():
            if fid == "comment":
                continue
            if not isinstance(ops, list):
                raise ApiError(400, errors={fid: "data was not an array"})
            current: Any = None
            if issue is not None:
                current = {
                    "labels": list(issue["labels"]),
                    "components": [{"id": c} for c in issue["components"]],
                    "fixVersions": [{"id": v} for v in issue["fixVersions"]],
                    "versions": [{"id": v} for v in issue["versions"]],
                }.get(fid)
            for op in ops:
                if not isinstance(op, dict) or len(op) != 1:
                    raise ApiError(400, errors={fid: "Operation must be one of set, add, remove"})
                verb, val = next(iter(op.items()))
                if verb == "set":
                    current = val
                elif verb in ("add", "remove") and fid in (
                    "labels",
                    "components",
                    "fixVersions",
                    "versions",
                ):
                    current = list(current or [])
                    if verb == "add":
                        current.append(val)
                    else:
                        current = [
                            x
                            for x in current
                            if x != val
                            and not (
                                isinstance(x, dict)
                                and isinstance(val, dict)
                                and (
                                    (x.get("id") and str(x.get("id")) == str(val.get("id")))
                                    or (x.get("name") and x.get("name") == val.get("name"))
                                )
                            )
                        ]
                        if fid != "labels":
                            # names in the remove request must resolve to ids first
                            ids = self._list_refs(
                                [val],
                                fid,
                                proj["components"] if fid == "components" else proj["versions"],
                                "Item",
                            )
                            current = [x for x in current if str(x.get("id")) not in ids]
                else:
                    raise ApiError(
                        400, errors={fid: f"Field '{fid}' does not support operation '{verb}'"}
                    )
            out[fid] = current
        return out

    # ------------------------------------------------------------------ changelog helpers
    def _item(self, fid: str, frm: Any, frm_s: Any, to: Any, to_s: Any, **extra) -> dict:
        if fid in CUSTOM_FIELDS:
            field, ftype = CUSTOM_FIELDS[fid][0], "custom"
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
        if fid in ("components", "fixVersions", "versions"):
            pool = proj["components"] if fid == "components" else proj["versions"]
            names = {x["id"]: x["name"] for x in pool}
            label = {"components": "Component", "fixVersions": "Fix Version", "versions": "Version"}
            removed = [x for x in old if x not in new]
            added = [x for x in new if x not in old]
            items = []
            # Jira pairs a removed value with an added one in a single item (v1 -> v2).
            for i in range(max(len(removed), len(added))):
                r = removed[i] if i < len(removed) else None
                a = added[i] if i < len(added) else None
                it = self._item(fid, r, names.get(r), a, names.get(a))
                it["field"] = label[fid]
                items.append(it)
            return items
        if fid == "parent":
            ok = self.issues.get(old, {}).get("key") if old else None
            nk = self.issues.get(new, {}).get("key") if new else None
            return [self._item("IssueParentAssociation", old, ok, new, nk)]
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
        flow: str = "Primary",
    ) -> None:
        ev = {
            "flow": flow,
            "webhookEvent": event,
            "issue_event_type_name": type_name,
            "actor": actor["accountId"],
            "issue": issue,
            "history": history,
            "comment": comment,
            "timestamp": ts or now_ms(),
        }
        for listener in list(self.listeners):
            listener(ev)

    # ------------------------------------------------------------------ issue operations
    def create_issue(self, *, actor: dict, body: dict, version: str) -> dict:
        with self.lock:
            if not isinstance(body, dict):
                raise ApiError(400, ["Can not deserialize instance of IssueBean"])
            fields = dict(body.get("fields") or {})
            errors: dict[str, str] = {}
            proj = None
            pref = fields.pop("project", None)
            if not isinstance(pref, dict):
                errors["project"] = "Specify a valid project ID or key"
            else:
                for p in self.projects.values():
                    if pref.get("key", "").upper() == p["key"] or str(pref.get("id")) == p["id"]:
                        proj = p
                if proj is None:
                    errors["project"] = "valid project is required"
            if "issuetype" not in fields:
                errors["issuetype"] = "Specify an issue type"
            if not fields.get("summary") and "summary" not in errors:
                errors["summary"] = "You must specify a summary of the issue."
            if errors:
                raise ApiError(400, errors=errors)
            assert proj is not None
            try:
                fields.update(self._apply_update_ops(None, body.get("update") or {}, version, proj))
            except ApiError as e:
                errors.update(e.errors)
            values: dict[str, Any] = {}
            for fid, val in fields.items():
                if fid not in EDITABLE and fid not in CUSTOM_FIELDS:
                    errors[fid] = _CANNOT_SET.format(fid)
                    continue
                try:
                    values[fid] = self.parse_field(fid, val, version, proj)
                except ApiError as e:
                    errors.update(e.errors)
            itype = values.get("issuetype")
            if itype == "10003" and not values.get("parent"):
                errors["parent"] = "Given parent issue does not belong to appropriate hierarchy."
            if values.get("parent") and itype != "10003":
                errors["parent"] = "Given parent issue does not belong to appropriate hierarchy."
            props = body.get("properties") or []
            if not isinstance(props, list) or not all(
                isinstance(p, dict) and "key" in p for p in props
            ):
                errors["properties"] = "Invalid properties"
            if errors:
                raise ApiError(400, errors=errors)
            ts = now_ms()
            iid = self._next("issue")
            key = f"{proj['key']}-{proj['next']}"
            proj["next"] += 1
            todo = STATUSES[self.flavor][0][0]
            issue = {
                "id": iid,
                "key": key,
                "project": proj["key"],
                "issuetype": itype,
                "summary": values["summary"],
                "description": values.get("description"),
                "environment": values.get("environment"),
                "priority": values.get("priority") or DEFAULT_PRIORITY,
                "labels": values.get("labels", []),
                "duedate": values.get("duedate"),
                "status": todo,
                "assignee": values.get("assignee"),
                "reporter": values["reporter"] if "reporter" in values else actor["accountId"],
                "creator": actor["accountId"],
                "created": ts,
                "updated": ts,
                "resolution": None,
                "resolutiondate": None,
                "statuscategorychangedate": ts,
                "lastViewed": None,
                "components": values.get("components", []),
                "fixVersions": values.get("fixVersions", []),
                "versions": values.get("versions", []),
                "parent": values.get("parent"),
                "custom": {k: v for k, v in values.items() if k in CUSTOM_FIELDS and v is not None},
                "comments": [],
                "properties": {p["key"]: p.get("value") for p in props},
                "remotelinks": [],
                "history": [],
                "watchers": [actor["accountId"]],
            }
            self.issues[iid] = issue
            self.keys[key] = iid
            # Cloud records the initial values as a changelog and sends it with the event.
            items = []
            for fid in ("assignee", "description", "priority", "reporter"):
                if fid == "description":
                    items.append(self._item(fid, None, None, None, issue[fid] or ""))
                elif issue.get(fid) is not None:
                    items += self._diff_items(issue, fid, None, issue[fid])
            items.append(self._item("status", None, None, todo, self.statuses[todo][1]))
            items[-1]["field"] = "Status"
            items.append(self._item("summary", None, None, None, issue["summary"]))
            for fid in CUSTOM_FIELDS:
                if fid in issue["custom"]:
                    items += self._diff_items(issue, fid, None, issue["custom"][fid])
            hist = (
                {
                    "id": self._next("history"),
                    "author": actor["accountId"],
                    "created": ts,
                    "items": items,
                }
                if self.cloud
                else None
            )
            self._emit("jira:issue_created", "issue_created", actor, issue, hist, ts=ts)
            for c in (body.get("update") or {}).get("comment", []) or []:
                if isinstance(c, dict) and "add" in c:
                    self._add_comment(actor, issue, c["add"].get("body"), version)
            return issue

    def edit_issue(self, *, actor: dict, key: str, body: dict, version: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            proj = self.project_of(issue)
            if not isinstance(body, dict):
                raise ApiError(400, ["Can not deserialize instance of IssueUpdateBean"])
            fields = dict(body.get("fields") or {})
            errors: dict[str, str] = {}
            update = body.get("update") or {}
            for fid in fields:
                if fid in update:
                    errors[fid] = (
                        "Field '" + fid + "' cannot be set in both the 'fields' and 'update' parts"
                    )
            try:
                fields.update(self._apply_update_ops(issue, update, version, proj))
            except ApiError as e:
                errors.update(e.errors)
            values: dict[str, Any] = {}
            for fid, val in fields.items():
                if fid not in EDITABLE and fid not in CUSTOM_FIELDS or fid == "parent":
                    errors[fid] = _CANNOT_SET.format(fid)
                    continue
                try:
                    values[fid] = self.parse_field(fid, val, version, proj)
                except ApiError as e:
                    errors.update(e.errors)
            if "issuetype" in values and (values["issuetype"] == "10003") != (
                issue["issuetype"] == "10003"
            ):
                errors["issuetype"] = "The issue type selected is invalid."
            if errors:
                raise ApiError(400, errors=errors)
            comments = [c for c in update.get("comment", []) or [] if isinstance(c, dict)]
            items: list[dict] = []
            ts = now_ms()
            for fid, new in values.items():
                if fid in CUSTOM_FIELDS:
                    old = issue["custom"].get(fid)
                    items += self._diff_items(issue, fid, old, new)
                    if new is None:
                        issue["custom"].pop(fid, None)
                    else:
                        issue["custom"][fid] = new
                else:
                    items += self._diff_items(issue, fid, issue[fid], new)
                    issue[fid] = new
            if items:
                issue["updated"] = ts
                hist = self._record(issue, actor, items, ts)
                only_assignee = all(i["fieldId"] == "assignee" for i in items)
                type_name = "issue_assigned" if only_assignee and self.cloud else "issue_updated"
                self._emit("jira:issue_updated", type_name, actor, issue, hist, ts=ts)
            for c in comments:
                if "add" in c:
                    self._add_comment(actor, issue, (c["add"] or {}).get("body"), version)

    def assign(self, *, actor: dict, key: str, body: dict) -> None:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            new = self._user_ref(body, "assignee") if body else None
            if body.get("accountId") is None and body.get("name") is None:
                new = None
            items = self._diff_items(issue, "assignee", issue["assignee"], new)
            issue["assignee"] = new
            ts = now_ms()
            if items:
                issue["updated"] = ts
                hist = self._record(issue, actor, items, ts)
            else:
                # Assigning the current assignee again still fires issue_assigned, with an
                # empty changelog (seen on Cloud); nothing is added to the issue's history.
                hist = {
                    "id": self._next("history"),
                    "author": actor["accountId"],
                    "created": ts,
                    "items": [],
                }
            self._emit("jira:issue_updated", "issue_assigned", actor, issue, hist, ts=ts)

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
            tid = str(body["transition"].get("id", ""))
            tname = body["transition"].get("name")
            chosen = None
            for t in self.available_transitions(issue):
                if t[0] == tid or (not tid and tname and t[1].lower() == str(tname).lower()):
                    chosen = t
            if chosen is None:
                raise ApiError(
                    400, [f"Transition id '{tid or tname}' is not valid for this issue."]
                )
            _, _, _, to_name, type_name = chosen
            new_sid = self.status_id(to_name)
            fields = dict(body.get("fields") or {})
            errors = {}
            resolution = None
            if "resolution" in fields:
                if self.status_cat(new_sid) != "done":
                    errors["resolution"] = _CANNOT_SET.format("resolution")
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
                errors.setdefault(fid, _CANNOT_SET.format(fid))
            if errors:
                raise ApiError(400, errors=errors)
            ts = now_ms()
            old_sid = issue["status"]
            old_cat, new_cat = self.status_cat(old_sid), self.status_cat(new_sid)
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
            issue["status"] = new_sid
            if old_cat != new_cat:
                issue["statuscategorychangedate"] = ts
            issue["updated"] = ts
            hist = self._record(issue, actor, items, ts)
            self._emit("jira:issue_updated", type_name, actor, issue, hist, ts=ts)
            for c in (body.get("update") or {}).get("comment", []) or []:
                if isinstance(c, dict) and "add" in c:
                    self._add_comment(actor, issue, (c["add"] or {}).get("body"), version)

    def delete_issue(self, *, actor: dict, key: str, delete_subtasks: bool) -> None:
        with self.lock:
            issue = self.get_issue(key)
            subs = self._subtask_ids(issue)
            if subs and not delete_subtasks:
                raise ApiError(
                    400,
                    [
                        f"The issue '{issue['key']}' has subtasks.  You must specify the "
                        "'deleteSubtasks' parameter to delete this issue and all its subtasks."
                    ],
                )
            for sid in subs:
                self._delete(actor, self.issues[sid])
            self._delete(actor, issue)

    def _delete(self, actor: dict, issue: dict) -> None:
        ts = now_ms()
        snapshot = copy.deepcopy(issue)
        # render before removal so the payload still knows the project and relations
        self._emit("jira:issue_deleted", "issue_deleted", actor, snapshot, ts=ts)
        if self.cloud:
            # Cloud sends the cascade (the issue's comments going away) on the Secondary flow.
            for c in snapshot["comments"]:
                self._emit(
                    "comment_deleted", None, actor, snapshot, comment=c, ts=ts, flow="Secondary"
                )
        self.issues.pop(issue["id"], None)
        self.keys.pop(issue["key"], None)

    # ------------------------------------------------------------------ comments
    def _add_comment(self, actor: dict, issue: dict, body: Any, version: str) -> dict:
        text = self._comment_body(body, version)
        ts = now_ms()
        c = {
            "id": self._next("comment"),
            "author": actor["accountId"],
            "updateAuthor": actor["accountId"],
            "body": text,
            "created": ts,
            "updated": ts,
        }
        issue["comments"].append(c)
        issue["updated"] = ts
        self._emit("comment_created", None, actor, issue, comment=c, ts=ts)
        self._emit("jira:issue_updated", "issue_commented", actor, issue, comment=c, ts=ts)
        return c

    def _comment_body(self, body: Any, version: str) -> str:
        if version == "3":
            if not adf.validate_adf(body):
                raise ApiError(
                    400,
                    errors={"comment": "Comment body is not a valid Atlassian Document"},
                )
            text = adf.adf_to_wiki(body) or ""
        else:
            if not isinstance(body, str):
                raise ApiError(400, errors={"comment": "Operation value must be a string"})
            text = body
        if not text.strip():
            raise ApiError(400, errors={"comment": "Comment body can not be empty!"})
        return text

    def add_comment(self, *, actor: dict, key: str, body: dict, version: str) -> tuple[dict, dict]:
        with self.lock:
            issue = self.get_issue(key)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            c = self._add_comment(actor, issue, body.get("body"), version)
            return issue, c

    def get_comment(self, key: str, cid: str) -> tuple[dict, dict]:
        issue = self.get_issue(key)
        for c in issue["comments"]:
            if c["id"] == str(cid):
                return issue, c
        raise ApiError(404, [f"Can not find a comment for the id: {cid}."])

    def edit_comment(
        self, *, actor: dict, key: str, cid: str, body: dict, version: str
    ) -> tuple[dict, dict]:
        with self.lock:
            issue, c = self.get_comment(key, cid)
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            text = self._comment_body(body.get("body"), version)
            ts = now_ms()
            c["body"] = text
            c["updateAuthor"] = actor["accountId"]
            c["updated"] = ts
            issue["updated"] = ts
            self._emit("comment_updated", None, actor, issue, comment=c, ts=ts)
            self._emit("jira:issue_updated", "issue_comment_edited", actor, issue, comment=c, ts=ts)
            return issue, c

    def delete_comment(self, *, actor: dict, key: str, cid: str) -> None:
        with self.lock:
            issue, c = self.get_comment(key, cid)
            issue["comments"].remove(c)
            ts = now_ms()
            issue["updated"] = ts
            self._emit("comment_deleted", None, actor, issue, comment=c, ts=ts)
            self._emit(
                "jira:issue_updated", "issue_comment_deleted", actor, issue, comment=c, ts=ts
            )

    # ------------------------------------------------------------------ properties / links
    def set_property(self, key: str, prop: str, value: Any) -> bool:
        with self.lock:
            issue = self.get_issue(key)
            if len(prop) > 255:
                raise ApiError(400, ["The property key can not be longer than 255 characters."])
            existed = prop in issue["properties"]
            issue["properties"][prop] = value
            return existed

    def delete_property(self, key: str, prop: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            if prop not in issue["properties"]:
                raise ApiError(404, [f"Property with key not found: {prop}"])
            del issue["properties"][prop]

    def add_remote_link(self, key: str, body: dict) -> tuple[dict, bool]:
        with self.lock:
            issue = self.get_issue(key)
            obj = body.get("object") if isinstance(body, dict) else None
            if not isinstance(obj, dict) or not obj.get("url") or not obj.get("title"):
                errors = {}
                if not isinstance(obj, dict) or not obj.get("url"):
                    errors["url"] = "'url' is a required field."
                if not isinstance(obj, dict) or not obj.get("title"):
                    errors["title"] = "'title' is a required field."
                raise ApiError(400, errors=errors)
            gid = body.get("globalId")
            if gid:
                for link in issue["remotelinks"]:
                    if link.get("globalId") == gid:
                        link.update({k: v for k, v in body.items() if k != "id"})
                        return link, False
            link = {"id": int(self._next("link")), **body}
            issue["remotelinks"].append(link)
            return link, True

    def remote_link_json(self, issue: dict, link: dict) -> dict:
        out = {
            "id": link["id"],
            "self": f"{self.base_url}/rest/api/2/issue/{issue['key']}/remotelink/{link['id']}",
        }
        out.update({k: v for k, v in link.items() if k not in ("id",)})
        return out

    def delete_remote_link(self, key: str, link_id: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            for link in issue["remotelinks"]:
                if str(link["id"]) == str(link_id):
                    issue["remotelinks"].remove(link)
                    return
            raise ApiError(404, ["No remote link with the given id."])

    # ------------------------------------------------------------------ search
    def search(self, jql_text: str | None, actor: dict | None, lag_ms: int = 0) -> list[dict]:
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
                    if (hidden_after is None or i["updated"] <= hidden_after)
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
            v = issue["custom"].get(f)
            kind = CUSTOM_FIELDS[f][1]
            if v is None:
                return "text", []
            if kind == "number":
                return "number", [v]
            if kind == "option":
                return "text", [v, dict(CUSTOM_FIELDS[f][2])[v].lower()]
            return "text", [str(v).lower() if kind != "textarea" else v]
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


def key_sort(key: str) -> tuple[str, int]:
    proj, _, num = key.upper().rpartition("-")
    return (proj, int(num) if num.isdigit() else 0)
