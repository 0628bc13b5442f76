"""Pure pieces of issue 12's items 5, 6 and 8: the list a component changelog started from,
our comment-copy header, and the last change of a field in a changelog."""

from __future__ import annotations

import pytest

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from jiraapi.events import FieldChange, JiraEvent, field_id_of
from sync.fields import kind_of
from sync.plan import _last_change
from sync.writes import comment_back, comment_copy, without_copy_header


def _change(frm: str | None, to: str | None) -> FieldChange:
    return FieldChange("components", None, frm, None, to, False, True)


@pytest.mark.parametrize(
    ("items", "now", "before"),
    [
        ([_change(None, "B")], ["A", "B"], ["A"]),  # one added
        ([_change("A", None)], ["B"], ["A", "B"]),  # one removed
        ([_change("A", "C")], ["B", "C"], ["A", "B"]),  # a pair in one item
        ([_change(None, "A"), _change(None, "B")], ["A", "B"], []),  # two added
    ],
)
def test_the_list_before_a_component_change_is_rebuilt_from_all_its_items(items, now, before):
    assert kind_of("components").before_all(items, now) == before


def test_data_center_component_items_without_field_id_name_the_components_field():
    event = JiraEvent.parse(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {"id": "1", "fields": {}},
            "changelog": {
                "items": [
                    {"field": "Component", "fieldtype": "jira", "to": "7", "toString": "X"},
                    {"field": "Fix Version", "fieldtype": "jira", "to": "8", "toString": "1"},
                    {"field": "Version", "fieldtype": "jira", "to": "9", "toString": "2"},
                ]
            },
        }
    )
    assert [c.field for c in event.changes] == ["components", "fixVersions", "versions"]
    assert all(c.identified for c in event.changes)


@pytest.mark.parametrize(("source", "target"), [("datacenter", "datacenter"), ("cloud", "cloud")])
def test_our_header_is_stripped_from_a_copy_in_either_markup(source, target):
    body = "Some *bold* words" if source == "datacenter" else wiki_to_adf("Some *bold* words")
    copy = comment_copy({"author": {"displayName": "Ann Lee"}, "body": body}, source, target)
    stripped = without_copy_header(copy)
    text = adf_to_wiki(stripped) if isinstance(stripped, dict) else stripped
    assert "wrote:" not in text and text.strip() == "Some *bold* words"


def test_a_copy_as_data_center_stores_it_with_crlf_loses_its_header_too():
    assert without_copy_header("*Ann* wrote:\r\n\r\nhello") == "hello"


def test_a_body_without_our_header_is_unchanged():
    assert without_copy_header("I wrote: this myself") == "I wrote: this myself"
    doc = wiki_to_adf("Ann wrote:\n\nplain, not bold")
    assert without_copy_header(doc) == doc


def test_a_copy_goes_back_across_flavors_without_its_header():
    copy = {"body": wiki_to_adf("*Ann* wrote:\n\nhello there")}
    assert comment_back(copy, "cloud", "datacenter").strip() == "hello there"


def test_the_last_change_of_a_field_is_found_among_histories():
    histories = [
        {"created": "2024-01-01T10:00:00.000+0000", "items": [{"field": "summary"}]},
        {"created": "2024-01-01T11:00:00.000+0000", "items": [{"field": "Component"}]},
        {"created": "2024-01-01T12:00:00.000+0000", "items": [{"fieldId": "summary"}]},
        {"created": "2024-01-01T13:00:00.000+0000", "items": [{"field": "labels"}]},
    ]
    assert _last_change(histories, "summary") == "2024-01-01T12:00:00.000+0000"
    assert _last_change(histories, "components") == "2024-01-01T11:00:00.000+0000"
    assert _last_change(histories, "duedate") is None
    assert field_id_of({"field": "Fix Version"}) == "fixVersions"
