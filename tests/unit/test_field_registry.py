"""The field registry: each kind of field read, written, compared and crossed in one place."""

from jiraapi.adf import adf_to_wiki, wiki_to_adf
from jiraapi.events import FieldChange
from sync import fields
from sync.fields import Crossing


def crossing(
    forward=None, source="cloud", target="cloud", issue_types=None, users=None, user_map=None
):
    users = users or {}
    return Crossing(
        forward=forward or {},
        source_flavor=source,
        target_flavor=target,
        issue_types=issue_types or {},
        find_user=lambda email: users.get(email),
        users=user_map or {},
    )


def change(field, **values) -> FieldChange:
    base = {"from_value": None, "from_string": None, "to_value": None, "to_string": None}
    return FieldChange(field=field, custom=False, identified=True, **(base | values))


def test_components_and_versions_are_read_and_written_by_name_not_by_the_sites_ids():
    cloud = [{"id": "10000", "name": "Backend", "self": "https://a/component/10000"}]
    server = [{"id": "77", "name": "Backend"}]
    for field_id in ("components", "fixVersions", "versions"):
        assert fields.read(field_id, {field_id: cloud}) == ["Backend"]
        assert fields.fingerprint(field_id, fields.read(field_id, {field_id: cloud})) == (
            fields.fingerprint(field_id, fields.read(field_id, {field_id: server}))
        )
        assert fields.kind_of(field_id).write(["Backend"], "datacenter") == [{"name": "Backend"}]


def test_a_user_crosses_by_the_user_map_then_by_e_mail_else_nobody():
    kind = fields.kind_of("assignee")
    mapped = kind.cross({"id": "acc-1", "email": ""}, crossing(forward={"acc-1": "jdoe"}))
    assert mapped["id"] == "jdoe"
    found = {"id": "bob", "email": "bob@x.example", "name": "Bob"}
    by_mail = kind.cross(
        {"id": "acc-2", "email": "bob@x.example"}, crossing(users={"bob@x.example": found})
    )
    assert by_mail == found
    nobody = kind.cross({"id": "acc-3", "email": ""}, crossing())
    assert isinstance(nobody, fields.Unmatched) and nobody.user["id"] == "acc-3"
    assert kind.cross(None, crossing()) is None
    assert kind.write({"id": "jdoe"}, "datacenter") == {"name": "jdoe"}
    assert kind.write({"id": "acc-1"}, "cloud") == {"accountId": "acc-1"}
    assert kind.same({"id": "u", "name": "A"}, {"id": "u", "name": "B"})


def test_an_issue_type_crosses_by_the_project_map_then_the_value_map():
    kind = fields.kind_of("issuetype")
    assert kind.cross("Story", crossing(issue_types={"Story": "Feature"})) == "Feature"
    assert kind.cross("Bug", crossing(forward={"Bug": "Defect"})) == "Defect"
    assert kind.write("Feature", "cloud") == {"name": "Feature"}


def test_rich_text_crosses_flavors_and_compares_by_words():
    kind = fields.kind_of("description")
    wiki = "Printer is *on fire*"
    as_adf = kind.cross(wiki, crossing(source="datacenter", target="cloud"))
    assert as_adf["type"] == "doc"
    assert kind.cross(as_adf, crossing(source="cloud", target="datacenter")) == adf_to_wiki(as_adf)
    assert fields.fingerprint("description", wiki_to_adf(wiki)) == fields.fingerprint(
        "description", wiki
    )


def test_status_moves_by_transition_every_other_standard_field_by_edit():
    assert not fields.kind_of("status").editable
    for field_id in ("summary", "priority", "labels", "duedate", "assignee", "components"):
        assert fields.kind_of(field_id).editable


def test_what_a_changelog_item_says_a_field_was_before():
    assert fields.kind_of("labels").before(change("labels", from_string="b a")) == ["a", "b"]
    assert fields.kind_of("assignee").before(change("assignee", from_value="acc-9")) == {
        "id": "acc-9"
    }
    assert fields.kind_of("assignee").before(change("assignee")) is None
    assert fields.kind_of("duedate").before(change("duedate", from_value="2026-01-02")) == (
        "2026-01-02"
    )
    assert fields.kind_of("priority").before(change("priority", from_string="High")) == "High"


def test_custom_fields_by_the_shape_of_their_value():
    assert fields.read(
        "customfield_10012", {"customfield_10012": {"value": "Major", "id": "3"}}
    ) == {"value": "Major"}
    kind = fields.kind_of("customfield_10012")
    assert kind.cross({"value": "Major"}, crossing(forward={"Major": "High"})) == {"value": "High"}
    assert fields.kind_of("customfield_1") is kind
    assert fields.kind_of("unknownfield").read(5) == 5


def test_the_organizations_user_map_comes_first_and_knows_data_center_keys():
    kind = fields.kind_of("assignee")
    dc_user = fields.user_of({"name": "jdoe", "key": "JIRAUSER10100", "displayName": "J"})
    assert dc_user == {"id": "jdoe", "email": "", "name": "J", "key": "JIRAUSER10100"}
    by_key = kind.cross(dc_user, crossing(user_map={"JIRAUSER10100": "acc-1"}))
    assert by_key["id"] == "acc-1"
    both = crossing(forward={"jdoe": "acc-pair"}, user_map={"jdoe": "acc-org"})
    assert kind.cross(dc_user, both)["id"] == "acc-org"
    assert kind.cross(dc_user, crossing(forward={"jdoe": "acc-pair"}))["id"] == "acc-pair"


def test_a_user_picker_custom_field_crosses_and_is_written_as_a_user():
    kind = fields.kind_of("customfield_10100")
    cloud = kind.read({"accountId": "acc-1", "displayName": "A", "emailAddress": "a@x"})
    server = kind.read({"name": "jdoe", "key": "JIRAUSER1", "displayName": "J"})
    assert cloud["id"] == "acc-1" and server["id"] == "jdoe"
    assert kind.same(server, {"id": "jdoe", "email": "", "name": "other"})
    crossed = kind.cross(cloud, crossing(user_map={"acc-1": "jdoe"}))
    assert kind.write(crossed, "datacenter") == {"name": "jdoe"}
    assert isinstance(kind.cross(server, crossing()), fields.Unmatched)
    assert kind.write([cloud], "cloud") == [{"accountId": "acc-1"}]
    assert kind.cross({"value": "Major"}, crossing(forward={"Major": "High"})) == {"value": "High"}


def test_text_over_jiras_limit_is_cut_to_fit_with_a_marker_and_its_overrun():
    wiki = "word " * 8000
    cut, over = fields.fit("description", wiki)
    assert over == len(wiki) - fields.TEXT_LIMIT
    assert len(cut) <= fields.TEXT_LIMIT and cut.endswith("32,767 limit]")
    assert f"{over:,} characters over" in cut
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "a" * 30000}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "b" * 30000}]},
        ],
    }
    cut, over = fields.fit("customfield_10013", doc)
    assert over == 60000 - fields.TEXT_LIMIT
    assert fields.text_length(cut) <= fields.TEXT_LIMIT
    assert "truncated by Jira sync" in cut["content"][-1]["content"][0]["text"]


def test_text_within_the_limit_and_other_kinds_are_left_alone():
    fitting = "x" * fields.TEXT_LIMIT
    assert fields.fit("description", fitting) == (fitting, 0)
    assert fields.fit("labels", ["x" * 40000]) == (["x" * 40000], 0)


def test_a_parent_is_read_from_cloud_parent_or_a_data_center_epic_link():
    cloud_sub = {"issuetype": {"subtask": True}, "parent": {"id": "10", "key": "A-1"}}
    assert fields.read("parent", cloud_sub) == {"id": "10", "key": "A-1", "subtask": True}
    dc_story = {"issuetype": {"subtask": False}, "customfield_10100": "B-7"}
    assert fields.read("parent", dc_story) == {"id": "", "key": "B-7", "subtask": False}
    assert fields.read("parent", {"issuetype": {"subtask": False}}) is None
    # an Epic Link names the key only: compared by key then, by id when both have one
    assert fields.same("parent", {"id": "", "key": "B-7"}, {"id": "99", "key": "B-7"})
    assert not fields.same("parent", {"id": "1", "key": "B-7"}, {"id": "2", "key": "B-7"})
    assert fields.same("parent", None, None) and not fields.same("parent", None, dc_story)


def test_a_parent_is_written_as_parent_on_cloud_and_as_the_epic_link_on_data_center():
    kind = fields.kind_of("parent")
    story = {"id": "5", "key": "R-5", "subtask": False}
    sub = {**story, "subtask": True}
    assert kind.payload("parent", story, "cloud") == {"parent": {"key": "R-5"}}
    assert kind.payload("parent", story, "datacenter") == {"customfield_10100": "R-5"}
    assert kind.payload("parent", sub, "datacenter") == {"parent": {"key": "R-5"}}


def test_a_parent_crosses_to_its_copy_or_is_unresolved():
    copies = {"10": {"id": "20", "key": "R-2"}}
    base = crossing()
    resolving = Crossing(**{**base.__dict__, "resolve_issue": lambda i: copies.get(i["id"])})
    value = {"id": "10", "key": "A-1", "subtask": True}
    assert fields.kind_of("parent").cross(value, resolving) == {
        "id": "20",
        "key": "R-2",
        "subtask": True,
    }
    lost = fields.kind_of("parent").cross({**value, "id": "11"}, resolving)
    assert isinstance(lost, fields.Unresolved) and lost.issue["key"] == "A-1"
