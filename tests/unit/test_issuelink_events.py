"""`issuelink_created` / `issuelink_deleted` read into `JiraEvent.link`."""

from __future__ import annotations

import pytest

from jiraapi.events import WEBHOOK_EVENTS, JiraEvent

PAYLOAD = {
    "timestamp": 1764140000000,
    "webhookEvent": "issuelink_created",
    "issueLink": {
        "id": 10001,
        "sourceIssueId": 10010,
        "destinationIssueId": 10011,
        "issueLinkType": {
            "id": 10000,
            "name": "Blocks",
            "outwardName": "blocks",
            "inwardName": "is blocked by",
            "isSubTaskLinkType": False,
            "isSystemLinkType": False,
        },
        "systemLink": False,
    },
}


def test_link_events_are_handled_events():
    assert {"issuelink_created", "issuelink_deleted"} <= set(WEBHOOK_EVENTS)


@pytest.mark.parametrize(
    "kind,action", [("issuelink_created", "created"), ("issuelink_deleted", "deleted")]
)
def test_a_link_event_names_its_link_ends_and_type(kind, action):
    event = JiraEvent.parse({**PAYLOAD, "webhookEvent": kind})
    assert event.handled
    link = event.link
    assert (link.action, link.id, link.source_issue_id, link.destination_issue_id) == (
        action,
        "10001",
        "10010",
        "10011",
    )
    assert link.type_name == "Blocks"
    assert event.issue_id == ""  # a link event is about two issues, not one


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "text",
        {"id": 1, "sourceIssueId": 2},
        {"id": "1\x00", "sourceIssueId": 2, "destinationIssueId": 3},
        {"id": 1, "sourceIssueId": "x", "destinationIssueId": 3},
        {"id": 1, "sourceIssueId": 2, "destinationIssueId": 3, "issueLinkType": {"name": "\ud800"}},
        {"id": 1, "sourceIssueId": 2, "destinationIssueId": 3, "issueLinkType": {"name": "a\x00"}},
    ],
)
def test_a_malformed_link_is_no_link(bad):
    assert JiraEvent.parse({**PAYLOAD, "issueLink": bad}).link is None


def test_an_issue_event_has_no_link():
    assert (
        JiraEvent.parse(
            {"webhookEvent": "jira:issue_updated", "issueLink": PAYLOAD["issueLink"]}
        ).link
        is None
    )
