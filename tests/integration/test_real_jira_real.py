"""The engine under Jira's less kind behaviours (issue 12, the `real` slice): fields off the
partner's edit screen, issue moves, Cloud keeping the ADF it is given, Data Center's CRLF
line ends and paged comment lists.

Two simulated sites over real HTTP, their webhooks fed to the engine one by one (the
`World` of test_loop_prevention); a Data Center partner where the behaviour is Data
Center's.
"""

from __future__ import annotations

import json

import pytest
import requests

from jirasim import JiraSim
from jirasim.testing import WebhookReceiver
from organizations import services as org_services
from sync.models import IssueLink, SyncEvent

from .test_loop_prevention import ALICE, EVENTS, SYNC, World

pytestmark = pytest.mark.django_db

CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


class DcPartnerWorld(World):
    """A Cloud local site and a Data Center partner site, one linked issue pair."""

    def __init__(self, settings, partner_options: dict) -> None:
        self.sims = {
            "local": JiraSim("cloud", ["LOC:Local"], [":".join(SYNC["local"]), ":".join(ALICE)]),
            "partner": JiraSim(
                "datacenter",
                ["REM:Partner"],
                [":".join(SYNC["partner"]), ":".join(ALICE)],
                options=partner_options,
            ),
        }
        self.hooks = {side: WebhookReceiver() for side in self.sims}
        for side, sim in self.sims.items():
            sim.start()
            self.hooks[side].__enter__()
            project = "LOC" if side == "local" else "REM"
            sim.register_webhook(self.hooks[side].url, EVENTS, f'project = "{project}"')
        settings.LOCAL_JIRA_URL = self.sims["local"].base_url
        settings.LOCAL_JIRA_USER, settings.LOCAL_JIRA_TOKEN = SYNC["local"]
        self.org = org_services.organization_create(
            name="Partner",
            remote_base_url=self.sims["partner"].base_url,
            remote_user=SYNC["partner"][0],
            remote_token=SYNC["partner"][1],
            remote_flavor="datacenter",
            sync_direction="bidirectional",
        )
        org_services.project_mapping_create(
            organization=self.org, local_project_key="LOC", remote_project_key="REM"
        )
        self.keys = {}

    def api(self, side, method, path, who=ALICE, **kwargs):
        version = "3" if side == "local" else "2"
        response = requests.request(
            method,
            f"{self.sims[side].base_url}/rest/api/{version}{path}",
            auth=who,
            timeout=10,
            **kwargs,
        )
        assert response.status_code < 400, response.text
        return response.json() if response.content else None


def _statuses(world, side) -> list[int]:
    log = requests.get(f"{world.sims[side].base_url}/_sim/calls", timeout=5).json()["calls"]
    return [c["status"] for c in log if c.get("user") == SYNC[side][0]]


# --- a field off the partner's edit screen ----------------------------------------------------


def test_a_refused_field_is_recorded_and_the_rest_is_written(world):
    world.sims["partner"].set_options(edit_screen_hidden_fields=["labels"])
    world.edit("local", summary="S2", labels=["hidden"])
    assert world.feed_all("local") == ["done"]  # not retried: a 400 will not pass later
    partner = world.fields("partner")
    assert partner["summary"] == "S2" and partner["labels"] == []
    event = SyncEvent.objects.filter(direction="push").latest("pk")
    assert event.result == "error" and CANNOT_SET.format("labels") in event.message
    assert "summary" in event.fields
    link = IssueLink.objects.get()
    assert CANNOT_SET.format("labels") in link.last_error
    assert set(world.feed_all("partner")) <= {"echo"}  # the summary coming back


def test_a_refused_field_is_not_sent_again_with_every_other_change(world):
    world.sims["partner"].set_options(edit_screen_hidden_fields=["labels"])
    world.edit("local", labels=["hidden"])
    world.feed_all("local")
    world.feed_all("partner")
    world.reset_calls()

    world.edit("local", priority={"name": "High"})
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["priority"]["name"] == "High"
    assert 400 not in _statuses(world, "partner")  # labels were not tried again
    assert world.calls("partner", writes_only=True) == 1
    link = IssueLink.objects.get()
    assert "labels" in link.last_error  # still shown: the labels are still not there

    # A new value is tried (once); once the screen shows the field, it goes through.
    world.sims["partner"].options.restore()
    world.edit("local", labels=["visible"])
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["labels"] == ["visible"]
    link.refresh_from_db()
    assert link.last_error == ""


def test_a_refused_pull_field_is_recorded_on_the_local_side_too(world):
    world.sims["local"].set_options(edit_screen_hidden_fields=["LOC/labels"])
    world.edit("partner", labels=["theirs"], summary="P2")
    assert world.feed_all("partner") == ["done"]
    local = world.fields("local")
    assert local["summary"] == "P2" and local["labels"] == []
    event = SyncEvent.objects.filter(direction="pull").latest("pk")
    assert event.result == "error" and "labels" in event.message


# --- issue moves ------------------------------------------------------------------------------


def test_a_partner_move_out_of_the_mapped_project_applies_their_delete_policy(world):
    """Moved to a project no mapping names (issue 15, item 5): as if deleted there, by the
    organization's policy for partner deletes (the default: a comment on our issue)."""
    partner = world.sims["partner"]
    partner.store.add_project(key="RM2", name="Partner two")
    # The partner's webhook sees its second project too (else the move is never delivered).
    partner.register_webhook(world.hooks["partner"].url, EVENTS, 'project = "RM2"')
    new_key = partner.move_issue(world.keys["partner"], "RM2", as_user=ALICE[0])
    statuses = world.feed_all("partner")
    assert statuses and "failed" not in statuses and "dead" not in statuses
    link = IssueLink.objects.get()
    assert link.remote_issue_key == new_key and link.status == "deleted"
    assert "moved out to RM2" in SyncEvent.objects.filter(direction="pull").latest("pk").message
    comments = world.api("local", "GET", f"/issue/{world.keys['local']}/comment")["comments"]
    assert len(comments) == 1 and "RM2" in json.dumps(comments[0]["body"])

    world.feed_all("local")  # our comment coming back
    world.reset_calls()
    world.edit("local", summary="after the move")  # no longer synced: nothing is written
    assert world.feed_all("local") == ["done"]
    assert world.calls("partner", writes_only=True) == 0
    assert world.api("partner", "GET", f"/issue/{new_key}")["fields"]["summary"] != (
        "after the move"
    )


def test_a_partner_move_its_webhook_never_reports_is_learnt_from_the_next_read(world):
    partner = world.sims["partner"]
    partner.store.add_project(key="RM2", name="Partner two")
    new_key = partner.move_issue(world.keys["partner"], "RM2", as_user=ALICE[0])
    assert world.feed_all("partner") == []  # its filter is project = REM: nothing is sent
    world.edit("local", summary="after an unseen move")
    assert world.feed_all("local") == ["done"]
    assert IssueLink.objects.get().remote_issue_key == new_key
    world.keys["partner"] = new_key
    assert world.fields("partner")["summary"] == "after an unseen move"


def test_a_local_move_out_of_the_mapped_project_applies_our_delete_policy(world):
    local = world.sims["local"]
    local.store.add_project(key="LC2", name="Local two")
    local.register_webhook(world.hooks["local"].url, EVENTS, 'project = "LC2"')
    new_key = local.move_issue(world.keys["local"], "LC2", as_user=ALICE[0])
    assert world.feed_all("local") == ["done"]  # LC2 is not mapped: the delete policy
    link = IssueLink.objects.get()
    assert link.local_issue_key == new_key and link.status == "deleted"
    comments = world.api("partner", "GET", f"/issue/{world.keys['partner']}/comment")
    (comment,) = comments["comments"]
    text = json.dumps(comment["body"])  # ADF or wiki markup, by the partner's flavor
    assert "no longer synced" in text and "LC2" not in text
    world.feed_all("partner")  # our comment coming back
    world.reset_calls()
    world.edit("partner", summary="from the partner")
    world.feed_all("partner")
    assert world.calls("local", writes_only=True) == 0  # no longer synced
    assert world.feed_all("local") == []  # no ping-pong


def test_a_move_by_the_sync_account_between_mapped_projects_keeps_one_pair(world):
    partner = world.sims["partner"]
    partner.store.add_project(key="RM2", name="Partner two")
    world.sims["local"].store.add_project(key="LC2", name="Local two")
    org_services.project_mapping_create(
        organization=world.org, local_project_key="LC2", remote_project_key="RM2"
    )
    partner.register_webhook(world.hooks["partner"].url, EVENTS, 'project = "RM2"')
    new_key = partner.move_issue(world.keys["partner"], "RM2", as_user=ALICE[0])
    world.feed_all("partner")
    assert IssueLink.objects.count() == 1
    assert IssueLink.objects.get().remote_issue_key == new_key
    world.keys["partner"] = new_key
    world.edit("partner", summary="moved and edited")
    assert world.feed_all("partner") == ["done"]
    assert world.fields("local")["summary"] == "moved and edited"
    assert IssueLink.objects.count() == 1
    assert set(world.feed_all("local")) <= {"echo"}


# --- Cloud keeping the ADF it is given ----------------------------------------------------------

RICH = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "paragraph",
            "attrs": {"localId": "4f1c2a"},
            "content": [
                {"type": "text", "text": "Ping "},
                {"type": "mention", "attrs": {"id": "712020:abc-def", "text": "@Alice"}},
                {"type": "text", "text": " about "},
                {"type": "text", "text": "this", "marks": [{"type": "strong"}, {"type": "em"}]},
            ],
        },
        {
            "type": "panel",
            "attrs": {"panelType": "warning", "localId": "p-77"},
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Careful"}]}],
        },
    ],
}


def test_our_own_rich_text_coming_back_from_a_cloud_that_keeps_adf_is_an_echo(world):
    for sim in world.sims.values():
        sim.set_options(store_adf=True)
    world.edit("local", description=RICH)
    assert world.feed_all("local") == ["done"]
    assert world.fields("partner")["description"] == RICH  # kept as given
    world.reset_calls()
    assert world.feed_all("partner") == ["echo"]
    assert world.total_calls() == 0


def test_a_rich_comment_copy_coming_back_is_an_echo_and_nothing_is_rewritten(world):
    for sim in world.sims.values():
        sim.set_options(store_adf=True)
    world.api("local", "POST", f"/issue/{world.keys['local']}/comment", json={"body": RICH})
    assert set(world.feed_all("local")) == {"done"}
    world.reset_calls()
    assert "echo" in world.feed_all("partner")
    assert world.total_calls() == 0  # known as ours without asking either site
    # An unrelated partner edit later syncs that field alone.
    world.edit("partner", priority={"name": "Low"})
    assert world.feed_all("partner") == ["done"]
    assert world.calls("local", writes_only=True) == 1


# --- Data Center's CRLF line ends ---------------------------------------------------------------


@pytest.fixture
def dc_world(settings):
    w = DcPartnerWorld(settings, {"crlf": True})
    w.link_pair()
    yield w
    w.close()


TWO_PARAGRAPHS = {
    "type": "doc",
    "version": 1,
    "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "first line"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "second line"}]},
    ],
}


def test_our_write_coming_back_with_crlf_is_an_echo(dc_world):
    world = dc_world
    world.edit("local", description=TWO_PARAGRAPHS)
    assert world.feed_all("local") == ["done"]
    assert "\r\n" in world.fields("partner")["description"]
    world.reset_calls()
    assert world.feed_all("partner") == ["echo"]
    assert world.total_calls() == 0


def test_crlf_text_does_not_ping_pong_when_another_field_changes(dc_world):
    world = dc_world
    world.edit("local", description=TWO_PARAGRAPHS)
    world.feed_all("local")
    world.feed_all("partner")
    world.reset_calls()
    world.edit("partner", summary="partner summary")
    assert world.feed_all("partner") == ["done"]
    assert world.calls("local", writes_only=True) == 1  # the summary, not the description
    world.reset_calls()
    world.feed_all("local")
    assert world.calls("partner", writes_only=True) == 0
    world.edit("local", summary="local summary")
    world.feed_all("local")
    assert world.calls("partner", writes_only=True) == 1


def test_a_partner_comment_with_crlf_is_copied_once(dc_world):
    world = dc_world
    world.api("partner", "POST", f"/issue/{world.keys['partner']}/comment", json={"body": "a\nb"})
    assert "done" in world.feed_all("partner")
    world.reset_calls()
    assert "echo" in world.feed_all("local")
    assert world.total_calls() == 0
    world.edit("partner", labels=["x"])
    world.feed_all("partner")
    assert world.calls("local", writes_only=True) == 1  # labels; the comment is not re-added


# --- paged comment lists ----------------------------------------------------------------------


def test_every_comment_is_copied_when_the_list_comes_in_pages(world):
    world.sims["local"].set_options(comment_page_size=2)
    world.sims["partner"].set_options(comment_page_size=2)
    for n in range(5):
        world.api(
            "local",
            "POST",
            f"/issue/{world.keys['local']}/comment",
            json={"body": world.sims["local"].adf(f"comment number {n}")},
        )
    world.feed_all("local")
    copies = []
    start = 0
    while True:
        page = world.api(
            "partner", "GET", f"/issue/{world.keys['partner']}/comment?startAt={start}"
        )
        copies += page["comments"]
        start += len(page["comments"])
        if not page["comments"] or start >= page["total"]:
            break
    assert len(copies) == 5
    world.reset_calls()
    assert "echo" in world.feed_all("partner")
    assert world.total_calls() == 0
    # A later comment on a long list is copied once; none is copied twice.
    world.api(
        "local",
        "POST",
        f"/issue/{world.keys['local']}/comment",
        json={"body": world.sims["local"].adf("the sixth")},
    )
    world.feed_all("local")
    assert world.calls("partner", writes_only=True) == 1


def test_a_textarea_custom_field_with_crlf_does_not_ping_pong(dc_world):
    world = dc_world
    org_services.field_mapping_create(
        organization=world.org, local_field="customfield_10013", remote_field="customfield_10013"
    )
    world.edit("local", customfield_10013=TWO_PARAGRAPHS)
    assert world.feed_all("local") == ["done"]
    assert "\r\n" in world.fields("partner")["customfield_10013"]
    world.reset_calls()
    # Data Center's changelog names a custom field without its id: never taken for an echo
    # unseen, it is read and compared, and nothing is written.
    assert world.feed_all("partner") == ["done"]
    assert world.total_writes() == 0
    world.edit("partner", summary="partner summary")
    assert world.feed_all("partner") == ["done"]
    assert world.calls("local", writes_only=True) == 1  # the summary, not the notes
    world.reset_calls()
    world.feed_all("local")
    assert world.total_writes() == 0
    # A partner edit of the notes reaches the local side as rich text.
    world.edit("partner", customfield_10013="new notes\nsecond line")
    assert world.feed_all("partner") == ["done"]
    notes = world.fields("local")["customfield_10013"]
    assert notes["type"] == "doc" and "new notes" in json.dumps(notes)
    world.reset_calls()
    world.feed_all("local")
    assert world.calls("partner", writes_only=True) == 0
