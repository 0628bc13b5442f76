# ruff: noqa: E501 - one line per fixture: each check reads as a row of a table
"""One parsed Jira webhook event (jiraapi.events.JiraEvent), checked against real bodies.

Every file in tests/fixtures/jira-webhooks/mattermost/ has one line below; its expectations
were read from the file by hand, not computed by the code under test.
"""

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jiraapi.events import WEBHOOK_EVENTS, FieldChange, JiraEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jira-webhooks" / "mattermost"

CREATED_FIELDS = ("description", "priority", "reporter", "status", "summary")
CLOUD_ADMIN = "5c5f880629be9642ba529340"  # accountId of the Cloud fixtures' "admin"
CLOUD_USER = "5cedcb4355a88a0fc86388ba"


def check_event(
    name: str,
    *,
    kind: str,
    issue_id: str,
    issue_key: str,
    project: str,
    comment: str | None,
    changed: tuple[str, ...],
    actor: str,
    comment_id: str = "",
    unidentified: tuple[str, ...] = (),
) -> JiraEvent:
    body = (FIXTURES / f"{name}.json").read_bytes()
    event = JiraEvent.from_body(body)
    assert event == JiraEvent.parse(json.loads(body))
    assert event.kind == kind
    assert event.handled is True
    assert (event.issue_id, event.issue_key, event.project_key) == (issue_id, issue_key, project)
    if issue_key:
        assert event.issue_fields["project"]["key"] == project
    else:
        assert dict(event.issue_fields) == {}
    assert event.is_create is (kind == "jira:issue_created")
    assert event.is_delete is (kind == "jira:issue_deleted")
    if comment is None:
        assert event.comment is None
    else:
        assert event.comment is not None
        assert event.comment.action == comment
        assert event.comment.id == comment_id
        assert event.comment.body == event.comment.raw["body"]
    assert event.actor is not None and event.actor.id == actor
    # Every fixture was sent between 2019 and 2024.
    assert event.timestamp is not None
    assert datetime(2019, 1, 1, tzinfo=UTC) < event.timestamp < datetime(2025, 1, 1, tzinfo=UTC)
    assert tuple(c.field for c in event.changes) == changed
    assert tuple(c.field for c in event.changes if not c.identified) == unidentified
    assert event.all_changes_identified is (not unidentified)
    for field in changed:
        assert event.change(field) is not None
    return event


# --- Cloud -----------------------------------------------------------------------------------


def test_cloud_comment_created_mention_user():
    check_event("webhook-cloud-comment-created-mention-user", kind="comment_created", issue_id="10040", issue_key="TES-41", project="TES", comment="created", comment_id="10019", changed=(), actor=CLOUD_ADMIN)  # fmt: skip


def test_cloud_comment_created():
    check_event("webhook-cloud-comment-created", kind="comment_created", issue_id="10040", issue_key="TES-41", project="TES", comment="created", comment_id="10019", changed=(), actor=CLOUD_ADMIN)  # fmt: skip


def test_cloud_comment_deleted():
    check_event("webhook-cloud-comment-deleted", kind="comment_deleted", issue_id="10357", issue_key="KT-7", project="KT", comment="deleted", comment_id="10757", changed=(), actor=CLOUD_USER)  # fmt: skip


def test_cloud_comment_updated():
    check_event("webhook-cloud-comment-updated", kind="comment_updated", issue_id="10040", issue_key="TES-41", project="TES", comment="updated", comment_id="10019", changed=(), actor=CLOUD_ADMIN)  # fmt: skip


def test_cloud_issue_created_many_fields():
    check_event("webhook-cloud-issue-created-many-fields", kind="jira:issue_created", issue_id="10509", issue_key="KT-22", project="KT", comment=None, changed=("assignee", "customfield_10073", "customfield_10076", "description", "fixVersions", "priority", "reporter", "status", "summary"), actor=CLOUD_USER)  # fmt: skip


def test_cloud_issue_updated_custom_field():
    check_event("webhook-cloud-issue-updated-custom-field", kind="jira:issue_updated", issue_id="10368", issue_key="TES-14", project="TES", comment=None, changed=("customfield_10072",), actor=CLOUD_USER)  # fmt: skip


def test_issue_assigned_empty_changelog():
    check_event("webhook-issue-assigned-empty-changelog", kind="jira:issue_updated", issue_id="10001", issue_key="TEST-123", project="TEST", comment=None, changed=(), actor="123456")  # fmt: skip


def test_issue_comment_created_indentation():
    check_event("webhook-issue-comment-created-indentation", kind="jira:issue_updated", issue_id="10101", issue_key="TEST-4", project="TEST", comment="created", comment_id="10503", changed=(), actor="test")  # fmt: skip


def test_issue_created_no_description_nor_relevant_fields():
    check_event("webhook-issue-created-no-description-nor-relevant-fields", kind="jira:issue_created", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=CREATED_FIELDS, actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_created_no_description():
    check_event("webhook-issue-created-no-description", kind="jira:issue_created", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=CREATED_FIELDS, actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_created_no_relevant_fields():
    check_event("webhook-issue-created-no-relevant-fields", kind="jira:issue_created", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=CREATED_FIELDS, actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_created_with_security_level():
    check_event("webhook-issue-created-with-security-level", kind="jira:issue_created", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=CREATED_FIELDS, actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_created():
    check_event("webhook-issue-created", kind="jira:issue_created", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=CREATED_FIELDS, actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_deleted():
    check_event("webhook-issue-deleted", kind="jira:issue_deleted", issue_id="10303", issue_key="IDT-19", project="IDT", comment=None, changed=(), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_assigned_nobody():
    check_event("webhook-issue-updated-assigned-nobody", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("assignee",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_assigned_on_server():
    check_event("webhook-issue-updated-assigned-on-server", kind="jira:issue_updated", issue_id="10226", issue_key="PRJA-37", project="PRJA", comment=None, changed=("assignee",), actor="admin")  # fmt: skip


def test_issue_updated_assigned():
    check_event("webhook-issue-updated-assigned", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("assignee",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_attachments():
    check_event("webhook-issue-updated-attachments", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("attachment",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_components():
    check_event("webhook-issue-updated-components", kind="jira:issue_updated", issue_id="10360", issue_key="TES-10", project="TES", comment=None, changed=("components",), actor=CLOUD_USER)  # fmt: skip


def test_issue_updated_edited():
    check_event("webhook-issue-updated-edited", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("description",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_fix_version():
    check_event("webhook-issue-updated-fix-version", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("fixVersions",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_issue_type():
    check_event("webhook-issue-updated-issue-type", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("issuetype",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_labels():
    check_event("webhook-issue-updated-labels", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("labels",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_lowered_priority():
    check_event("webhook-issue-updated-lowered-priority", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("priority",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_multiple_custom_fields():
    check_event("webhook-issue-updated-multiple-custom-fields", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("customfield_10001", "customfield_10002"), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_multiple_values():
    check_event("webhook-issue-updated-multiple-values", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("fixVersions", "assignee", "customfield_10072"), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_raised_priority():
    check_event("webhook-issue-updated-raised-priority", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("priority",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_rank():
    # The file's fieldId is the display name "Rank": not an id we know, so lower-cased.
    check_event("webhook-issue-updated-rank", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("rank",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_renamed():
    check_event("webhook-issue-updated-renamed", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("summary",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_reopened_one_changelog():
    check_event("webhook-issue-updated-reopened-one-changelog", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("resolution",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_reopened():
    check_event("webhook-issue-updated-reopened", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("resolution", "status"), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_resolved_one_changelog():
    check_event("webhook-issue-updated-resolved-one-changelog", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("resolution",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_resolved():
    check_event("webhook-issue-updated-resolved", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("resolution", "status"), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_sprint():
    check_event("webhook-issue-updated-sprint", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("sprint",), actor=CLOUD_ADMIN)  # fmt: skip


def test_issue_updated_started_working():
    check_event("webhook-issue-updated-started-working", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("status",), actor=CLOUD_ADMIN)  # fmt: skip


# --- Server / Data Center ----------------------------------------------------------------------


def test_server_comment_created():
    # No `issue` and no `user`: the id comes from the comment's self link, the actor is its author.
    check_event("webhook-server-comment-created", kind="comment_created", issue_id="10013", issue_key="", project="", comment="created", comment_id="10082", changed=(), actor="levbrouk")  # fmt: skip


def test_server_comment_deleted():
    check_event("webhook-server-comment-deleted", kind="comment_deleted", issue_id="10013", issue_key="", project="", comment="deleted", comment_id="10084", changed=(), actor="levbrouk")  # fmt: skip


def test_server_comment_updated():
    check_event("webhook-server-comment-updated", kind="comment_updated", issue_id="10013", issue_key="", project="", comment="updated", comment_id="10084", changed=(), actor="levbrouk")  # fmt: skip


def test_server_issue_updated_closed():
    check_event("webhook-server-issue-updated-closed", kind="jira:issue_updated", issue_id="10300", issue_key="TES-4", project="TES", comment=None, changed=("status",), actor="admin")  # fmt: skip


def test_server_issue_updated_comment_deleted():
    # issue_comment_deleted, but the body holds no comment object: no comment to name.
    event = check_event("webhook-server-issue-updated-comment-deleted", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment=None, changed=(), actor="levbrouk")  # fmt: skip
    assert event.event_type_name == "issue_comment_deleted"


def test_server_issue_updated_comment_edited():
    check_event("webhook-server-issue-updated-comment-edited", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment="updated", comment_id="10084", changed=(), actor="levbrouk")  # fmt: skip


def test_server_issue_updated_commented_1():
    check_event("webhook-server-issue-updated-commented-1", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment="created", comment_id="10082", changed=(), actor="levbrouk")  # fmt: skip


def test_server_issue_updated_commented_2():
    check_event("webhook-server-issue-updated-commented-2", kind="jira:issue_updated", issue_id="10231", issue_key="PRJA-42", project="PRJA", comment="created", comment_id="10118", changed=(), actor="TestUser")  # fmt: skip


def test_server_issue_updated_commented_3():
    check_event("webhook-server-issue-updated-commented-3", kind="jira:issue_updated", issue_id="10231", issue_key="PRJA-42", project="PRJA", comment="created", comment_id="10118", changed=(), actor="TestUser")  # fmt: skip


def test_server_issue_updated_commented_mention_user():
    check_event("webhook-server-issue-updated-commented-mention-user", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment="created", comment_id="10082", changed=(), actor="levbrouk")  # fmt: skip


def test_server_issue_updated_in_progress():
    check_event("webhook-server-issue-updated-in-progress", kind="jira:issue_updated", issue_id="10300", issue_key="TES-4", project="TES", comment=None, changed=("status",), actor="admin")  # fmt: skip


def test_server_issue_updated_many_fields():
    check_event("webhook-server-issue-updated-many-fields", kind="jira:issue_updated", issue_id="10400", issue_key="HEY-15", project="HEY", comment=None, changed=("labels",), actor="mickmister")  # fmt: skip


def test_server_issue_updated_reopened():
    check_event("webhook-server-issue-updated-reopened", kind="jira:issue_updated", issue_id="10300", issue_key="TES-4", project="TES", comment=None, changed=("resolution", "status"), actor="admin")  # fmt: skip


def test_server_issue_updated_resolved():
    check_event("webhook-server-issue-updated-resolved", kind="jira:issue_updated", issue_id="10300", issue_key="TES-4", project="TES", comment=None, changed=("status", "resolution"), actor="admin")  # fmt: skip


def test_server_old_issue_updated_no_event_type_assigned():
    check_event("webhook-server-old-issue-updated-no-event-type-assigned", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("assignee",), actor=CLOUD_ADMIN)  # fmt: skip


def test_server_old_issue_updated_no_event_type_comment_deleted():
    check_event("webhook-server-old-issue-updated-no-event-type-comment-deleted", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment=None, changed=(), actor="levbrouk")  # fmt: skip


def test_server_old_issue_updated_no_event_type_comment_edited():
    # Without issue_event_type_name the comment in the body is not taken for a comment event.
    check_event("webhook-server-old-issue-updated-no-event-type-comment-edited", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment=None, changed=(), actor="levbrouk")  # fmt: skip


def test_server_old_issue_updated_no_event_type_commented():
    check_event("webhook-server-old-issue-updated-no-event-type-commented", kind="jira:issue_updated", issue_id="10013", issue_key="PRJX-14", project="PRJX", comment=None, changed=(), actor="levbrouk")  # fmt: skip


def test_server_old_issue_updated_no_event_type_edited():
    check_event("webhook-server-old-issue-updated-no-event-type-edited", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("description",), actor=CLOUD_ADMIN)  # fmt: skip


def test_server_updated_custom_field():
    # A custom field without fieldId: which field it is cannot be told.
    check_event("webhook-server-updated-custom-field", kind="jira:issue_updated", issue_id="10106", issue_key="TES-8", project="TES", comment=None, changed=("numfield",), actor="test", unidentified=("numfield",))  # fmt: skip


def test_every_fixture_has_its_line():
    source = Path(__file__).read_text()
    missing = [
        path.name
        for path in sorted(FIXTURES.glob("*.json"))
        if f'check_event("{path.stem}", ' not in source
    ]
    assert missing == []


# --- the details of a changelog item ------------------------------------------------------------


def test_a_changelog_item_keeps_its_from_and_to():
    event = check_event("webhook-issue-updated-fix-version", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("fixVersions",), actor=CLOUD_ADMIN)  # fmt: skip
    assert event.change("fixVersions") == FieldChange(
        field="fixVersions",
        from_value="10000",
        from_string="v1",
        to_value="10001",
        to_string="v2",
        custom=False,
        identified=True,
    )
    assert event.change("summary") is None


def test_a_custom_field_with_its_id_is_identified():
    event = JiraEvent.parse(
        {
            "webhookEvent": "jira:issue_updated",
            "changelog": {
                "items": [
                    {
                        "field": "QA Steps",
                        "fieldId": "customfield_10072",
                        "fieldtype": "custom",
                        "toString": "Make sure",
                    }
                ]
            },
        }
    )
    (change,) = event.changes
    assert (change.field, change.custom, change.identified) == ("customfield_10072", True, True)
    assert change.to_string == "Make sure" and change.from_string is None


@pytest.mark.parametrize(
    ("name", "field_id"),
    [
        ("Component", "components"),
        ("Fix Version", "fixVersions"),
        ("Version", "versions"),
        ("issue type", "issuetype"),
        ("due date", "duedate"),
        ("Key", "key"),
        ("Attachment", "attachment"),
        ("Link", "issuelinks"),
        ("Parent", "parent"),
        ("Project", "project"),
        ("Status", "status"),
        ("summary", "summary"),
        ("assignee", "assignee"),
        ("labels", "labels"),
        ("Workflow", "workflow"),
    ],
)
def test_data_center_display_names_become_field_ids(name, field_id):
    # Data Center changelog items often carry only the display name (no fieldId).
    item = {"field": name, "fieldtype": "jira", "from": "1", "fromString": "a", "to": "2"}
    event = JiraEvent.parse({"webhookEvent": "jira:issue_updated", "changelog": {"items": [item]}})
    (change,) = event.changes
    assert change.field == field_id
    assert change.identified is True and change.custom is False
    assert (change.from_value, change.from_string, change.to_value, change.to_string) == (
        "1",
        "a",
        "2",
        None,
    )


def test_the_data_center_name_component_is_components():
    payload = json.loads((FIXTURES / "webhook-issue-updated-components.json").read_text())
    del payload["changelog"]["items"][0]["fieldId"]  # as Data Center sends it
    event = JiraEvent.parse(payload)
    assert [c.field for c in event.changes] == ["components"]
    assert event.change("components").to_string == "Special Component"
    assert event.all_changes_identified


def test_a_data_center_sprint_is_a_custom_field_we_cannot_identify():
    item = {"field": "Sprint", "fieldtype": "custom", "from": "", "to": "3", "toString": "S 3"}
    event = JiraEvent.parse({"webhookEvent": "jira:issue_updated", "changelog": {"items": [item]}})
    (change,) = event.changes
    assert (change.field, change.custom, change.identified) == ("sprint", True, False)
    assert event.all_changes_identified is False


# --- timestamps --------------------------------------------------------------------------------


def _at(timestamp):
    return JiraEvent.parse({"webhookEvent": "jira:issue_updated", "timestamp": timestamp}).timestamp


def test_a_timestamp_in_milliseconds():
    assert _at(1559607317234) == datetime(2019, 6, 4, 0, 15, 17, 234000, tzinfo=UTC)


def test_a_timestamp_in_seconds():
    assert _at(1559607317) == datetime(2019, 6, 4, 0, 15, 17, tzinfo=UTC)
    assert _at(1559607317.5) == datetime(2019, 6, 4, 0, 15, 17, 500000, tzinfo=UTC)


def test_a_timestamp_is_aware_utc():
    stamp = _at(int(time.time() * 1000))
    assert stamp.tzinfo is UTC
    assert abs(stamp.timestamp() - time.time()) < 60


@pytest.mark.parametrize(
    "timestamp",
    [
        None,
        0,
        -1,
        946684799,  # one second before 2000
        946684799999,
        int(time.time()) + 3 * 86400,  # three days ahead
        int(time.time() * 1000) + 3 * 86400 * 1000,
        10**30,
        float("nan"),
        float("inf"),
        True,
        "1559607317234",
        [1559607317234],
        {"ms": 1},
    ],
)
def test_a_missing_or_insane_timestamp_is_none(timestamp):
    assert _at(timestamp) is None


def test_a_timestamp_at_the_edges_of_the_window():
    assert _at(946684800) == datetime(2000, 1, 1, tzinfo=UTC)
    assert _at(int(time.time()) + 3600) is not None


# --- garbage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"webhookEvent": None},
        {"webhookEvent": ["jira:issue_updated"]},
        {"webhookEvent": "jira:issue_updated", "issue": []},
        {"webhookEvent": "jira:issue_updated", "issue": "TES-1"},
        {"webhookEvent": "jira:issue_updated", "issue": {"id": {}, "key": [], "fields": None}},
        {"webhookEvent": "jira:issue_updated", "issue": {"id": 1, "fields": {"project": "X"}}},
        {"webhookEvent": "jira:issue_updated", "issue": {"fields": []}},
        {"webhookEvent": "jira:issue_updated", "changelog": []},
        {"webhookEvent": "jira:issue_updated", "changelog": {"items": None}},
        {"webhookEvent": "jira:issue_updated", "changelog": {"items": {"field": "summary"}}},
        {"webhookEvent": "jira:issue_updated", "changelog": {"items": [1, "x", None, []]}},
        {
            "webhookEvent": "jira:issue_updated",
            "changelog": {"items": [{"field": 3, "fieldId": [], "from": {}, "to": 2}]},
        },
        {"webhookEvent": "comment_created", "comment": []},
        {"webhookEvent": "comment_created", "comment": {"self": 7, "id": None, "author": "x"}},
        {"webhookEvent": "comment_created", "comment": {"self": None}, "user": []},
        {"webhookEvent": "jira:issue_updated", "issue_event_type_name": {}, "comment": {}},
        {"webhookEvent": "jira:issue_updated", "user": {"accountId": 5, "name": None}},
        {"webhookEvent": "jira:issue_updated", "timestamp": {}},
    ],
)
def test_garbage_typed_members_parse_without_raising(payload):
    event = JiraEvent.parse(payload)
    assert isinstance(event.kind, str)
    assert isinstance(event.issue_id, str) and isinstance(event.issue_key, str)
    assert isinstance(event.project_key, str)
    assert isinstance(dict(event.issue_fields), dict)
    assert isinstance(event.changes, tuple)
    for change in event.changes:
        assert isinstance(change.field, str)
        for value in (change.from_value, change.from_string, change.to_value, change.to_string):
            assert value is None or isinstance(value, str)


def test_garbage_is_treated_as_absent():
    event = JiraEvent.parse(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {"id": {}, "key": ["K-1"], "fields": None},
            "changelog": {"items": [None, "x", {"field": "summary", "to": {}, "toString": "t"}]},
            "user": "someone",
        }
    )
    assert (event.issue_id, event.issue_key, event.project_key) == ("", "", "")
    assert dict(event.issue_fields) == {}
    assert event.actor is None
    (change,) = event.changes
    assert (change.field, change.to_value, change.to_string) == ("summary", None, "t")


def test_numbers_are_read_as_strings():
    event = JiraEvent.parse(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {"id": 10040, "key": "TES-41", "fields": {"project": {"key": "TES"}}},
            "changelog": {"items": [{"field": "priority", "from": 2, "to": 4}]},
        }
    )
    assert event.issue_id == "10040"
    assert (event.change("priority").from_value, event.change("priority").to_value) == ("2", "4")


def test_the_issue_fields_are_read_only():
    event = check_event("webhook-issue-updated-labels", kind="jira:issue_updated", issue_id="10040", issue_key="TES-41", project="TES", comment=None, changed=("labels",), actor=CLOUD_ADMIN)  # fmt: skip
    with pytest.raises(TypeError):
        event.issue_fields["summary"] = "x"  # type: ignore[index]


def test_an_unknown_event_is_not_handled():
    event = JiraEvent.parse({"webhookEvent": "jira:version_released", "version": {}})
    assert event.kind == "jira:version_released" and event.handled is False
    assert JiraEvent.parse({}).kind == "" and JiraEvent.parse({}).handled is False
    assert all(JiraEvent.parse({"webhookEvent": kind}).handled for kind in WEBHOOK_EVENTS)


def test_a_comment_type_name_on_another_event_is_not_a_comment():
    comment = {"id": "1", "body": "x", "self": "https://j/rest/api/2/issue/5/comment/1"}
    deleted = {
        "webhookEvent": "jira:issue_deleted",
        "issue_event_type_name": "issue_commented",
        "comment": comment,
    }
    assert JiraEvent.parse(deleted).comment is None


def test_the_actor_of_a_comment_event_without_user_is_who_last_wrote_it():
    comment = {
        "id": "1",
        "self": "https://j/rest/api/2/issue/5/comment/1",
        "author": {"name": "first", "displayName": "First"},
        "updateAuthor": {"name": "second", "key": "k2", "displayName": "Second"},
    }
    event = JiraEvent.parse({"webhookEvent": "comment_updated", "comment": comment})
    assert event.issue_id == "5"
    assert event.actor is not None
    assert (event.actor.id, event.actor.key, event.actor.display_name) == ("second", "k2", "Second")
    assert event.comment is not None and event.comment.body is None


def test_an_actor_id_is_the_account_id_then_the_name_then_the_key():
    def actor(user):
        return JiraEvent.parse({"webhookEvent": "jira:issue_updated", "user": user}).actor

    assert actor({"accountId": "a", "name": "n", "key": "k"}).id == "a"
    assert actor({"name": "n", "key": "k"}).id == "n"
    assert actor({"key": "k", "emailAddress": "e@x"}).id == "k"
    assert actor({"key": "k", "emailAddress": "e@x"}).email == "e@x"
    assert actor({}) is None


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b"[" * 100_000],
)
def test_from_body_refuses_what_is_not_a_json_object(body):
    with pytest.raises((ValueError, UnicodeDecodeError)):
        JiraEvent.from_body(body)


def test_a_data_center_epic_link_item_is_a_change_of_parent_we_can_identify():
    item = {
        "field": "Epic Link",
        "fieldtype": "custom",
        "from": None,
        "fromString": None,
        "to": "10200",
        "toString": "REM-1",
    }
    event = JiraEvent.parse({"webhookEvent": "jira:issue_updated", "changelog": {"items": [item]}})
    assert event.change("parent").to_string == "REM-1"
    assert event.all_changes_identified


def _worklog_body(kind, worklog):
    return {"timestamp": 1764150000000, "webhookEvent": kind, "worklog": worklog}


def test_a_worklog_event_names_its_issue_by_the_worklogs_issue_id_and_its_author():
    worklog = {
        "self": "https://x.atlassian.net/rest/api/2/issue/10027/worklog/10000",
        "author": {"accountId": "a1", "displayName": "Alice"},
        "updateAuthor": {"accountId": "b2", "displayName": "Bob"},
        "comment": "Fixed it",
        "started": "2026-11-26T10:00:00.000+0000",
        "timeSpent": "1h",
        "timeSpentSeconds": 3600,
        "id": "10000",
        "issueId": "10027",
    }
    event = JiraEvent.parse(_worklog_body("worklog_updated", worklog))
    assert event.handled and event.issue_id == "10027" and event.issue_key == ""
    assert (event.worklog.action, event.worklog.id) == ("updated", "10000")
    assert event.worklog.raw["timeSpentSeconds"] == 3600
    assert event.actor.id == "b2"  # who last changed it
    assert event.comment is None and event.changes == ()


@pytest.mark.parametrize("worklog", [None, "10000", [], {"id": 5}])
def test_a_worklog_event_with_a_malformed_worklog_parses_without_raising(worklog):
    event = JiraEvent.parse(_worklog_body("worklog_created", worklog))
    assert event.kind == "worklog_created" and event.issue_id == ""
    if isinstance(worklog, dict):
        assert event.worklog.id == "5"
    else:
        assert event.worklog is None


def test_only_worklog_events_carry_a_worklog():
    body = _worklog_body("jira:issue_updated", {"id": "1", "issueId": "2"})
    assert JiraEvent.parse(body).worklog is None
