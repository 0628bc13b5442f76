"""How Jira-like one simulated site is: the site's *realism options*.

Every option's default is the simulator's friendly behaviour (what the sync's older tests
were written against); each option turns on one way real Jira is less kind. Options are
set per site: ``JiraSim(options={...})``, ``python -m jirasim --option name=value`` (the
value is JSON, or a plain string), ``GET/POST /_sim/options`` (POST merges). A reset keeps
the options: they describe the site's configuration, not its data.

Use :data:`REAL_JIRA` (``JiraSim(options=REAL_JIRA)``) for every realistic behaviour at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

WORKFLOW_NAMES = ("simple", "multistep")  # jirasim/model.py WORKFLOWS


@dataclass
class SiteOptions:
    # Workflow: "simple" (To Do <-> In Progress <-> Done, any direction) or "multistep"
    # (To Do -> In Progress -> In Review -> Done, only forward by one step plus "Reopen" and
    # "Stop progress", with a transition screen requiring the resolution on Done, and a
    # shortcut To Do -> Done hidden by a condition). See jirasim/model.py WORKFLOWS.
    workflow: str = "simple"
    # Fields (ids) that the screen of every transition into a done status also requires,
    # e.g. ("customfield_10010",): a transition without them is refused with Jira's 400
    # {"errors": {"customfield_10010": "External Reference is required."}}. Empty: none.
    transition_required_fields: tuple[str, ...] = ()
    # A transition that sets or clears the resolution records it as its own change, after
    # the status one: its own changelog entry and webhook naming only `resolution` (as when
    # a workflow post function or an automation rule sets it; the real payloads
    # webhook-issue-updated-resolved-one-changelog / -reopened-one-changelog show such
    # events). False: one change naming both.
    resolution_separate_changelog: bool = False
    # editmeta: only the fields on a project's / issue type's edit screen may be edited;
    # others are refused with Jira's 400 ("Field 'x' cannot be set. It is not on the
    # appropriate screen, or unknown.") and left out of GET issue/{key}/editmeta. Each entry
    # is "field" (every project), "PROJ/field" or "PROJ/Issue Type/field".
    # Empty: every field is editable.
    edit_screen_hidden_fields: tuple[str, ...] = ()
    # Users' emailAddress is hidden (Cloud's default profile visibility) for everyone but
    # the caller (REST answers and every webhook payload), and user search by e-mail finds
    # no one. Default: every address shown.
    hide_emails: bool = False
    # Components and versions get ids from a per-site offset, so two sites never share
    # them, and a write naming an id that does not exist in the project is refused (400) as
    # in Jira; a value given by {"id"} is found by its id alone, by {"name"} by its name.
    # 0: every site numbers them alike from 10001 and an id or a name finds a value.
    # Changing it renumbers the site's components and versions (issues keep their values).
    id_offset: int = 0
    # Cloud stores rich text as the ADF it was given (localIds, mentions, marks) instead
    # of rebuilding it from wiki markup.
    store_adf: bool = False
    # Data Center text (description, environment, comments, textarea custom fields) comes
    # back with CRLF line ends (as text typed in the browser is stored). Cloud: no effect.
    crlf: bool = False
    # Comment lists are paged at this size (Jira caps maxResults per endpoint and says so in
    # the answer's maxResults), and the `comment` field of GET issue holds only the first
    # page (its `total` counts all). 0: every comment in one page.
    comment_page_size: int = 0
    # Data Center's limit on multi-line text (its `jira.text.field.character.limit`, 32,767
    # by default; 0: no limit, as an administrator may set). Cloud's is always 32,767.
    dc_text_limit: int = 32767
    # The site's attachment size limit in bytes (Jira's `jira.attachment.size`, 10 MB on a
    # new Data Center install): a larger upload is refused with 413. 0: no limit.
    attachment_max_bytes: int = 0


REAL_JIRA: dict[str, Any] = {
    "workflow": "multistep",
    "resolution_separate_changelog": True,
    "hide_emails": True,
    "id_offset": 7000,
    "store_adf": True,
    "crlf": True,
    "comment_page_size": 50,
}


class Options:
    """The options of one site, read and changed under a lock."""

    def __init__(self, initial: dict[str, Any] | None = None):
        self.lock = threading.Lock()
        self.values = SiteOptions()
        # Called with the new snapshot after every change (the site's store renumbers
        # components and versions when `id_offset` changes).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        if initial:
            self.update(initial)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        known = {f.name: f for f in fields(SiteOptions)}
        with self.lock:
            for name, value in (changes or {}).items():
                if name not in known:
                    raise ValueError(f"unknown option {name!r}")
                default = getattr(SiteOptions(), name)
                if isinstance(default, tuple):
                    value = tuple(value or ())
                elif isinstance(default, bool):
                    value = bool(value)
                elif isinstance(default, int):
                    value = int(value)
                else:
                    value = str(value)
                if name == "workflow" and value not in WORKFLOW_NAMES:
                    raise ValueError(f"workflow must be one of {', '.join(WORKFLOW_NAMES)}")
                setattr(self.values, name, value)
            snapshot = asdict(self.values)
        return self._notify(snapshot)

    def restore(self) -> dict[str, Any]:
        """Back to the friendly defaults."""
        with self.lock:
            self.values = SiteOptions()
            snapshot = asdict(self.values)
        return self._notify(snapshot)

    def _notify(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        for listener in list(self.listeners):
            listener(snapshot)
        return snapshot

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return asdict(self.values)

    def __getattr__(self, name: str) -> Any:
        if name in ("lock", "values", "listeners"):
            raise AttributeError(name)
        return getattr(self.values, name)


def parse_cli(pairs: list[str]) -> dict[str, Any]:
    """``["workflow=multistep", "hide_emails=true"]`` -> options (values as JSON, else text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        try:
            out[name.strip()] = json.loads(raw)
        except ValueError:
            out[name.strip()] = raw
    return out
