"""The site's data: users, projects, issues, id sequences, persistence, auth and lookups.

``SiteState`` is the base of :class:`jirasim.store.Store`; it holds the lock that every
public store operation takes and the listeners that receive change events.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import ApiError
from .issue_links import DEFAULT_LINK_TYPES
from .model import CLOUD, DATACENTER, STATUSES, WORKFLOWS, Transition
from .options import Options

DEFAULT_USER = ("admin@example.com", "secret-token")

# Each site of this process gets its own block of component and version ids (under the
# `id_offset` option); the process id spreads sites started by separate processes apart.
_SITE_NUMBERS = itertools.count((os.getpid() % 1000) * 1000)
_ID_BLOCK = 1000


def _account_id(email: str) -> str:
    digest = hashlib.sha256(email.lower().encode()).hexdigest()
    return f"712020:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


class SiteState:
    """Users, projects and issues of one site, with the lock and the change listeners."""

    def __init__(
        self,
        *,
        flavor: str = CLOUD,
        projects: list[tuple[str, str]] | None = None,
        users: list[tuple[str, str]] | None = None,
        base_url: str = "http://127.0.0.1",
        options: Options | None = None,
    ):
        if flavor not in (CLOUD, DATACENTER):
            raise ValueError(f"unknown flavor {flavor!r}")
        self.flavor = flavor
        self.options = options or Options()
        self.cloud = flavor == CLOUD
        self.base_url = base_url
        self.lock = threading.RLock()
        # Who is asking, per request thread (the REST caller's accountId; unset for webhook
        # payloads and control pages): with `hide_emails`, only the caller sees their own.
        self._viewer = threading.local()
        self.listeners: list[Callable[[dict], None]] = []
        self._initial_projects = list(projects or [("TEST", "Test Project")])
        self._initial_users = list(users or [DEFAULT_USER])
        self.statuses = {sid: (sid, name, cat) for sid, name, cat in STATUSES[flavor]}
        self.status_by_name = {name.lower(): sid for sid, name, _ in STATUSES[flavor]}
        self.site_number = next(_SITE_NUMBERS)
        self.options.listeners.append(self._options_changed)
        self.reset()

    @property
    def transitions(self) -> list[Transition]:
        """The transitions of the site's workflow (the ``workflow`` option, read each time)."""
        return WORKFLOWS[self.options.workflow][self.flavor]

    # ------------------------------------------------------------------ setup / persistence
    def reset(self) -> None:
        with self.lock:
            self.users: dict[str, dict] = {}
            self.projects: dict[str, dict] = {}
            self.issues: dict[str, dict] = {}
            self.keys: dict[str, str] = {}
            self.links: dict[str, dict] = {}
            self.link_types = {
                tid: {"id": tid, "name": name, "inward": inward, "outward": outward}
                for tid, name, inward, outward in DEFAULT_LINK_TYPES
            }
            self.blobs: dict[str, bytes] = {}  # attachment contents, by attachment id
            self.seq = {
                "issue": 10000,
                "comment": 10000,
                "worklog": 10000,
                "history": 10000,
                "project": 10000,
                "link": 10000,
                "issuelink": 10000,
                "linktype": 10003,
                "attachment": 10000,
                "component": self._id_start(),
                "version": self._id_start(),
            }
            self.ids_offset = self.options.id_offset
            for i, (email, token) in enumerate(self._initial_users):
                self.add_user(email=email, token=token, admin=(i == 0))
            for key, name in self._initial_projects:
                self.add_project(key=key, name=name)

    def _id_start(self) -> int:
        """The number before this site's first component / version id."""
        offset = self.options.id_offset
        return 10000 if not offset else 10000 + offset + _ID_BLOCK * self.site_number

    @property
    def strict_ids(self) -> bool:
        """Components and versions by `{"id"}` are found by id only (``id_offset`` set)."""
        return bool(self.options.id_offset)

    def _options_changed(self, values: dict) -> None:
        with self.lock:
            if values.get("id_offset", 0) != getattr(self, "ids_offset", 0):
                self._renumber_components_and_versions()

    def _renumber_components_and_versions(self) -> None:
        """New ids for every component and version (`id_offset` changed); issues follow."""
        start = self._id_start()
        self.seq["component"] = self.seq["version"] = start
        renamed: dict[str, dict[str, str]] = {"components": {}, "versions": {}}
        for proj in self.projects.values():
            for pool, seq in (("components", "component"), ("versions", "version")):
                for item in proj[pool]:
                    new = self._next(seq)
                    renamed[pool][item["id"]] = new
                    item["id"] = new
        for issue in self.issues.values():
            for fid, pool in (
                ("components", "components"),
                ("fixVersions", "versions"),
                ("versions", "versions"),
            ):
                issue[fid] = [renamed[pool].get(x, x) for x in issue.get(fid) or []]
        self.ids_offset = self.options.id_offset

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
                    "links": self.links,
                    "link_types": self.link_types,
                    "seq": self.seq,
                }
            )

    def load(self, data: dict) -> None:
        with self.lock:
            self.users = data["users"]
            self.projects = data["projects"]
            self.issues = data["issues"]
            self.seq = {"issuelink": 10000, "linktype": 10003, **data["seq"]}
            self.seq.setdefault("attachment", 10000)
            self.blobs = {}  # contents are not saved: attachments read back empty
            self.links = data.get("links", {})
            if "link_types" in data:
                self.link_types = data["link_types"]
            self.keys = {}
            for iid, i in self.issues.items():
                for old in i.get("old_keys", ()):  # a moved issue's old keys still resolve
                    self.keys[old] = iid
                self.keys[i["key"]] = iid
            self.ids_offset = self.options.id_offset

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

    @contextmanager
    def viewed_by(self, account_id: str | None) -> Iterator[None]:
        """Render users inside the block as `account_id` sees them (None: nobody's own)."""
        before = getattr(self._viewer, "id", None)
        self._viewer.id = account_id
        try:
            yield
        finally:
            self._viewer.id = before

    def email_visible(self, account_id: str) -> bool:
        """Whether the current viewer sees this user's e-mail address."""
        if not self.options.hide_emails:
            return True
        return account_id == getattr(self._viewer, "id", None)

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

    def _subtask_ids(self, issue: dict) -> list[str]:
        """The issue's sub-tasks (an epic's issues are its children, not its sub-tasks)."""
        return [
            i["id"]
            for i in self.issues.values()
            if i.get("parent") == issue["id"] and i.get("issuetype") == "10003"
        ]
