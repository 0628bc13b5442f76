"""Static catalogue of a simulated Jira site: issue types, priorities, workflow, fields."""

from __future__ import annotations

from typing import NamedTuple

CLOUD = "cloud"
DATACENTER = "datacenter"
FLAVORS = (CLOUD, DATACENTER)

ISSUE_TYPES = [
    # id, name, description, subtask, avatarId
    ("10001", "Story", "Functionality or a feature expressed as a user goal.", False, 10315),
    ("10002", "Task", "A small, distinct piece of work.", False, 10318),
    ("10004", "Bug", "A problem or error.", False, 10303),
    ("10000", "Epic", "A big user story that needs to be broken down.", False, 10307),
    ("10003", "Sub-task", "A small piece of work that's part of a larger task.", True, 10316),
]

PRIORITIES = [
    ("1", "Highest", "highest"),
    ("2", "High", "high"),
    ("3", "Medium", "medium"),
    ("4", "Low", "low"),
    ("5", "Lowest", "lowest"),
]
DEFAULT_PRIORITY = "3"

RESOLUTIONS = [
    ("10000", "Done", "Work has been completed on this issue."),
    ("10001", "Won't Do", "This issue won't be actioned."),
    ("10002", "Duplicate", "The problem is a duplicate of an existing issue."),
]
DEFAULT_RESOLUTION = "10000"

STATUS_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}

# Status ids as the fixtures show them for each deployment. "In Review" belongs to the
# multi-step workflow; "Blocked" is in every site's catalogue but no transition of either
# workflow leads into it (a status the sync can be asked for and never reach, as in a Jira
# whose workflow for the project does not contain every status of the site).
STATUSES = {
    CLOUD: [
        ("10001", "To Do", "new"),
        ("3", "In Progress", "indeterminate"),
        ("10002", "Done", "done"),
        ("10003", "In Review", "indeterminate"),
        ("10004", "Blocked", "indeterminate"),
    ],
    DATACENTER: [
        ("10000", "To Do", "new"),
        ("3", "In Progress", "indeterminate"),
        ("10001", "Done", "done"),
        ("10002", "In Review", "indeterminate"),
        ("10003", "Blocked", "indeterminate"),
    ],
}


class Transition(NamedTuple):
    """One workflow transition.

    ``frm``: the status names it leaves from, None for a global transition. ``screen``: the
    fields on its transition screen, (field id, required). ``condition``: a condition that
    hides it from everyone (``GET transitions`` leaves it out unless
    ``includeUnavailableTransitions=true``, which shows it with ``isAvailable: false``; a
    POST naming it is refused with 400 as for any transition not valid for the issue).
    """

    id: str
    name: str
    frm: list[str] | None
    to: str
    event: str
    screen: tuple[tuple[str, bool], ...] = ()
    condition: str | None = None


# Workflows by the site option ``workflow``, then by flavor.
#
# "simple": To Do <-> In Progress <-> Done. Cloud's simplified workflow uses global
# transitions that fire the Generic Event; the Data Center workflow mirrors the classic one
# (its transitions fire the classic events).
#
# "multistep": a company-managed workflow To Do -> In Progress -> In Review -> Done, forward
# one step at a time, with "Stop Progress" (In Progress -> To Do), "Back to progress"
# (In Review -> In Progress) and "Reopen" (Done -> To Do). The transition into Done has a
# screen on which the resolution is required (Jira answers 400 {"errors": {"resolution":
# ...}} without it). A shortcut To Do -> Done exists but a condition (members of a group
# nobody is in) hides it. Custom transitions fire the Generic Event.
_SIMPLE = {
    CLOUD: [
        Transition("11", "To Do", None, "To Do", "issue_generic"),
        Transition("21", "In Progress", None, "In Progress", "issue_generic"),
        Transition("31", "Done", None, "Done", "issue_generic"),
    ],
    DATACENTER: [
        Transition("4", "Start Progress", ["To Do", "Done"], "In Progress", "issue_work_started"),
        Transition("301", "Stop Progress", ["In Progress"], "To Do", "issue_work_stopped"),
        Transition("5", "Resolve Issue", ["To Do", "In Progress"], "Done", "issue_resolved"),
        Transition("3", "Reopen Issue", ["Done"], "To Do", "issue_reopened"),
    ],
}
_RESOLUTION_SCREEN = (("resolution", True),)
_MULTISTEP = {
    CLOUD: [
        Transition("111", "Start Progress", ["To Do"], "In Progress", "issue_generic"),
        Transition("121", "Stop Progress", ["In Progress"], "To Do", "issue_generic"),
        Transition("131", "Submit for Review", ["In Progress"], "In Review", "issue_generic"),
        Transition("141", "Back to progress", ["In Review"], "In Progress", "issue_generic"),
        Transition(
            "151", "Approve", ["In Review"], "Done", "issue_generic", screen=_RESOLUTION_SCREEN
        ),
        Transition("161", "Reopen", ["Done"], "To Do", "issue_generic"),
        Transition(
            "171",
            "Fast-track",
            ["To Do"],
            "Done",
            "issue_generic",
            screen=_RESOLUTION_SCREEN,
            condition="group:release-managers",
        ),
    ],
    DATACENTER: [
        Transition("4", "Start Progress", ["To Do"], "In Progress", "issue_work_started"),
        Transition("301", "Stop Progress", ["In Progress"], "To Do", "issue_work_stopped"),
        Transition("711", "Submit for Review", ["In Progress"], "In Review", "issue_generic"),
        Transition("721", "Back to progress", ["In Review"], "In Progress", "issue_generic"),
        Transition(
            "5", "Resolve Issue", ["In Review"], "Done", "issue_resolved", _RESOLUTION_SCREEN
        ),
        Transition("3", "Reopen Issue", ["Done"], "To Do", "issue_reopened"),
        Transition(
            "731",
            "Fast-track",
            ["To Do"],
            "Done",
            "issue_resolved",
            screen=_RESOLUTION_SCREEN,
            condition="group:release-managers",
        ),
    ],
}
WORKFLOWS = {"simple": _SIMPLE, "multistep": _MULTISTEP}
# The simple workflow's transitions (older name).
TRANSITIONS = _SIMPLE

# Custom fields: id -> (name, kind, options). kind: text | textarea | number | option | date
CUSTOM_FIELDS = {
    "customfield_10010": ("External Reference", "text", None),
    "customfield_10011": ("Story Points", "number", None),
    "customfield_10012": (
        "Severity",
        "option",
        [("10020", "Minor"), ("10021", "Major"), ("10022", "Critical")],
    ),
    "customfield_10013": ("Notes", "textarea", None),
    "customfield_10014": ("Target Date", "date", None),
}

# Jira Software's agile fields on Data Center: Epic Link (the epic's key, on a standard issue;
# Cloud has no such field since its parent unification: a standard issue's `parent` is its
# epic) and Epic Name (required when creating an Epic on Data Center). id -> (name, schema).
DC_EPIC_LINK = "customfield_10100"
DC_EPIC_NAME = "customfield_10101"
DC_AGILE_FIELDS = {
    DC_EPIC_LINK: ("Epic Link", "any", "com.pyxis.greenhopper.jira:gh-epic-link"),
    DC_EPIC_NAME: ("Epic Name", "string", "com.pyxis.greenhopper.jira:gh-epic-label"),
}
# Issue hierarchy levels (Jira Cloud's `hierarchyLevel`): an epic is above a standard issue,
# a sub-task below it.
EPIC_TYPE, SUBTASK_TYPE = "10000", "10003"


def hierarchy_level(issuetype: str | None) -> int:
    return 1 if issuetype == EPIC_TYPE else (-1 if issuetype == SUBTASK_TYPE else 0)


CUSTOM_SCHEMA = {
    "text": ("string", "com.atlassian.jira.plugin.system.customfieldtypes:textfield"),
    "textarea": ("string", "com.atlassian.jira.plugin.system.customfieldtypes:textarea"),
    "number": ("number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    "option": ("option", "com.atlassian.jira.plugin.system.customfieldtypes:select"),
    "date": ("date", "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"),
}

# System fields: id -> (name, schema type, orderable, searchable, clause names)
SYSTEM_FIELDS = {
    "summary": ("Summary", "string", True, True, ["summary"]),
    "description": ("Description", "string", True, True, ["description"]),
    "issuetype": ("Issue Type", "issuetype", True, True, ["issuetype", "type"]),
    "project": ("Project", "project", False, True, ["project"]),
    "status": ("Status", "status", False, True, ["status"]),
    "priority": ("Priority", "priority", True, True, ["priority"]),
    "labels": ("Labels", "array", True, True, ["labels"]),
    "assignee": ("Assignee", "user", True, True, ["assignee"]),
    "reporter": ("Reporter", "user", True, True, ["reporter"]),
    "creator": ("Creator", "user", False, True, ["creator"]),
    "duedate": ("Due date", "date", True, True, ["due", "duedate"]),
    "resolution": ("Resolution", "resolution", True, True, ["resolution"]),
    "resolutiondate": ("Resolved", "datetime", False, True, ["resolutiondate", "resolved"]),
    "created": ("Created", "datetime", False, True, ["created", "createdDate"]),
    "updated": ("Updated", "datetime", False, True, ["updated", "updatedDate"]),
    "components": ("Components", "array", True, True, ["component"]),
    "fixVersions": ("Fix versions", "array", True, True, ["fixVersion"]),
    "versions": ("Affects versions", "array", True, True, ["affectedVersion"]),
    "environment": ("Environment", "string", True, True, ["environment"]),
    "parent": ("Parent", "issuelink", True, True, ["parent"]),
    "subtasks": ("Sub-tasks", "array", False, True, ["subtasks"]),
    "comment": ("Comment", "comments-page", True, True, ["comment"]),
    "issuelinks": ("Linked Issues", "array", True, False, ["issueLink"]),
    "attachment": ("Attachment", "array", True, True, ["attachments"]),
    "security": ("Security Level", "securitylevel", True, True, ["level"]),
    "watches": ("Watchers", "watches", False, True, ["watchers"]),
    "votes": ("Votes", "votes", False, True, ["votes"]),
    "worklog": ("Log Work", "array", True, False, ["worklogAuthor"]),
    "timetracking": ("Time tracking", "timetracking", True, False, []),
    "lastViewed": ("Last Viewed", "datetime", False, True, ["lastViewed"]),
    "statuscategorychangedate": ("Status Category Changed", "datetime", False, True, []),
}

# Fields a client may set by create/edit (others answer "cannot be set").
EDITABLE = {
    "summary",
    "description",
    "issuetype",
    "priority",
    "labels",
    "assignee",
    "reporter",
    "duedate",
    "components",
    "fixVersions",
    "versions",
    "environment",
    "parent",
}
