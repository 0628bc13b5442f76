"""Attachments both ways (issue 15, item 1): copies made through a temporary file, deletes
followed, our own upload and delete recognised as echoes (no call), a retried upload after
a lost answer leaves one copy, and the organization's size limit and name filter refuse
files once (recorded, not retried).

Two simulated sites over HTTP (Cloud and Cloud, Cloud and Data Center), their webhooks fed
one by one as in `test_loop_prevention`.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from organizations import services as org_services
from sync.engine import preview, sync_issue
from sync.jobs import job_build
from sync.models import AttachmentLink, IssueLink, SyncEvent

from .test_loop_prevention import ALICE, OTHER, WAYS, World

pytestmark = pytest.mark.django_db

NO_CHECK = {"X-Atlassian-Token": "no-check"}


@pytest.fixture(params=["cloud", "datacenter"])
def pair(request, settings):
    """A linked pair between a Cloud site and a partner of either flavor."""
    w = World(settings, partner_flavor=request.param)
    w.link_pair()
    yield w
    w.close()


def upload(w: World, side: str, name: str, content: bytes) -> dict:
    path = f"/issue/{w.keys[side]}/attachments"
    files = [("file", (name, content, "application/octet-stream"))]
    return w.api(side, "POST", path, files=files, headers=NO_CHECK)[0]


def attachments(w: World, side: str) -> list[dict]:
    return w.fields(side)["attachment"]


def content(w: World, side: str, attachment: dict) -> bytes:
    response = requests.get(attachment["content"], auth=ALICE, timeout=10)
    assert response.status_code == 200
    return response.content


def drain(w: World) -> None:
    for _ in range(3):
        w.feed_all("local")
        w.feed_all("partner")


@pytest.mark.parametrize("way", WAYS)
def test_an_attachment_is_copied_and_its_echo_costs_no_call(pair, way):
    w = pair
    author, copier = WAYS[way], OTHER[WAYS[way]]
    data = os.urandom(300_000)
    original = upload(w, author, "report.bin", data)
    assert w.feed_all(author) == ["done"]
    (copy,) = attachments(w, copier)
    assert copy["filename"] == "report.bin" and copy["size"] == len(data)
    assert content(w, copier, copy) == data
    row = AttachmentLink.objects.get()
    assert row.status == "copied" and row.sha256 == hashlib.sha256(data).hexdigest()
    column = {"local": "local", "partner": "remote"}
    assert getattr(row, f"{column[author]}_attachment_id") == original["id"]
    assert getattr(row, f"{column[copier]}_attachment_id") == copy["id"]
    w.reset_calls()
    assert w.feed_all(copier) == ["echo"]
    assert w.total_calls() == 0
    assert [a["filename"] for a in attachments(w, author)] == ["report.bin"]


@pytest.mark.parametrize("way", WAYS)
def test_deleting_an_attachment_deletes_its_copy_and_the_echo_costs_no_call(pair, way):
    w = pair
    author, copier = WAYS[way], OTHER[WAYS[way]]
    original = upload(w, author, "gone.txt", b"soon gone")
    w.feed_all(author)
    w.feed_all(copier)
    w.api(author, "DELETE", f"/attachment/{original['id']}")
    assert w.feed_all(author) == ["done"]
    assert attachments(w, copier) == []
    assert not AttachmentLink.objects.exists()
    w.reset_calls()
    assert w.feed_all(copier) == ["echo"]
    assert w.total_calls() == 0


def test_deleting_the_copy_deletes_the_original(pair):
    w = pair
    upload(w, "local", "copy-deleted.txt", b"x")
    w.feed_all("local")
    w.feed_all("partner")
    (copy,) = attachments(w, "partner")
    w.api("partner", "DELETE", f"/attachment/{copy['id']}")
    assert w.feed_all("partner") == ["done"]
    assert attachments(w, "local") == []
    assert w.feed_all("local") == ["echo"]


def test_a_lost_upload_answer_is_retried_into_one_copy(pair):
    w = pair
    w.sims["partner"].set_faults(response_lost_count=1, path_pattern=r"/attachments$")
    try:
        upload(w, "local", "lost.bin", b"0123456789" * 1000)
        assert w.feed_all("local") == ["done"]
    finally:
        w.sims["partner"].clear_faults()
    assert [a["filename"] for a in attachments(w, "partner")] == ["lost.bin"]
    uploads = [c for c in w.sims["partner"].calls() if c["path"].endswith("/attachments")]
    assert len(uploads) == 1  # the copy the lost answer made was adopted, not uploaded again
    row = AttachmentLink.objects.get()
    assert row.status == "copied" and row.remote_attachment_id == attachments(w, "partner")[0]["id"]
    w.reset_calls()
    assert w.feed_all("partner") == ["echo"]
    assert w.total_calls() == 0


def test_a_file_over_the_size_limit_is_refused_once_and_not_retried(pair):
    w = pair
    org_services.organization_update(organization=w.org, data={"attachment_max_bytes": 1000})
    upload(w, "local", "big.bin", b"x" * 5000)
    assert w.feed_all("local") == ["done"]
    assert attachments(w, "partner") == []
    row = AttachmentLink.objects.get()
    assert row.status == "refused" and "over the limit of 1000" in row.reason
    event = SyncEvent.objects.filter(message__contains="big.bin").latest("pk")
    assert "not copied" in event.message
    # A later edit of the issue does not try the file again (and costs no table look-up).
    w.reset_calls()
    w.edit("local", summary="after the refusal")
    assert w.feed_all("local") == ["done"]
    assert attachments(w, "partner") == []
    assert not [c for c in w.sims["local"].calls() if "attachment" in c["path"]]
    assert AttachmentLink.objects.count() == 1


def test_a_file_matching_an_excluded_pattern_is_not_copied(pair):
    w = pair
    org_services.organization_update(
        organization=w.org, data={"attachment_exclude": "*.exe, *.TMP"}
    )
    upload(w, "local", "setup.EXE", b"MZ")
    upload(w, "local", "scratch.tmp", b"t")
    upload(w, "local", "notes.txt", b"kept")
    w.feed_all("local")
    assert [a["filename"] for a in attachments(w, "partner")] == ["notes.txt"]
    refused = AttachmentLink.objects.filter(status="refused").order_by("filename")
    assert [r.filename for r in refused] == ["scratch.tmp", "setup.EXE"]
    assert all("excluded by the pattern" in r.reason for r in refused)


def test_attachments_off_copies_nothing(pair):
    w = pair
    org_services.organization_update(organization=w.org, data={"copy_attachments": False})
    upload(w, "local", "kept-home.txt", b"x")
    w.feed_all("local")
    assert attachments(w, "partner") == []
    assert not AttachmentLink.objects.exists()


def test_a_new_issue_is_created_with_its_existing_attachments(pair):
    w = pair
    created = w.api(
        "local",
        "POST",
        "/issue",
        json={"fields": {"project": {"key": "LOC"}, "issuetype": {"name": "Task"}, "summary": "N"}},
    )
    w.take("local")  # the create is fed after the upload: the issue has its file when read
    path = f"/issue/{created['key']}/attachments"
    files = [("file", ("early.txt", b"there before the sync", "text/plain"))]
    w.api("local", "POST", path, files=files, headers=NO_CHECK)
    w.take("local")
    link_count = IssueLink.objects.count()
    job = job_build(
        project_mapping=w.org.project_mappings.get(),
        way="push",
        issue_id=created["id"],
        issue=w.api("local", "GET", f"/issue/{created['key']}"),
    )
    assert preview(job).attachments == ["add early.txt"]  # the dry run lists, writes nothing
    assert IssueLink.objects.count() == link_count and not AttachmentLink.objects.exists()
    change = sync_issue(job)
    assert change.action == "create" and change.attachments == ["add early.txt"]
    copy_key = IssueLink.objects.get(local_issue_id=created["id"]).remote_issue_key
    found = w.api("partner", "GET", f"/issue/{copy_key}")["fields"]["attachment"]
    assert [a["filename"] for a in found] == ["early.txt"]


def test_an_ordinary_edit_reads_no_attachment_table(pair):
    """The agreed fingerprint in the link's state answers: no AttachmentLink query."""
    w = pair
    upload(w, "local", "a.txt", b"a")
    drain(w)
    w.edit("local", summary="plain edit")
    hooks = w.take("local")
    with CaptureQueriesContext(connection) as captured:
        for hook in hooks:
            w.feed("local", hook)
    assert not [q for q in captured.captured_queries if "sync_attachmentlink" in q["sql"]]
    assert w.fields("partner")["summary"] == "plain edit"


def test_refused_files_are_shown_in_the_admin_and_counted_on_the_dashboard(pair, admin_client):
    w = pair
    org_services.organization_update(organization=w.org, data={"attachment_exclude": "*.exe"})
    upload(w, "local", "tool.exe", b"MZ")
    w.feed_all("local")
    link = IssueLink.objects.get()
    page = admin_client.get(f"/admin/sync/issuelink/{link.pk}/change/").content.decode()
    assert "tool.exe" in page and "excluded by the pattern" in page
    listed = admin_client.get("/admin/sync/attachmentlink/?status__exact=refused")
    assert "tool.exe" in listed.content.decode()
    dashboard = admin_client.get("/admin/dashboard/").content.decode()
    assert 'id="attachments-refused"' in dashboard and 'data-count="1"' in dashboard


def test_a_file_the_target_refuses_is_recorded_once_and_not_retried(pair):
    w = pair
    w.sims["partner"].set_options(attachment_max_bytes=100)
    try:
        upload(w, "local", "too-big-there.bin", b"y" * 500)
        assert w.feed_all("local") == ["done"]
        row = AttachmentLink.objects.get()
        assert row.status == "refused" and "the target refused it" in row.reason
        assert "too large" in row.reason
        w.reset_calls()
        w.edit("local", summary="later edit")
        w.feed_all("local")
        uploads = [c for c in w.sims["partner"].calls() if c["path"].endswith("/attachments")]
        assert uploads == []
    finally:
        w.sims["partner"].options.restore()


def test_a_file_deleted_before_its_copy_is_skipped(pair):
    w = pair
    original = upload(w, "local", "short-lived.txt", b"x")
    hooks = w.take("local")
    w.api("local", "DELETE", f"/attachment/{original['id']}")
    w.take("local")
    statuses = [w.feed("local", hook) for hook in hooks]
    assert statuses == ["done"]
    assert attachments(w, "partner") == []


def test_the_attachment_settings_default_on_and_are_set_through_the_api(api, make_org):
    make_org(name="Org", public_id="org-att")
    body = api.get("/api/organizations/org-att/").json()
    assert body["copyAttachments"] is True
    assert body["attachmentMaxBytes"] == 25 * 1024 * 1024 and body["attachmentExclude"] == ""
    changed = api.patch(
        "/api/organizations/org-att/",
        {"copyAttachments": False, "attachmentMaxBytes": 1024, "attachmentExclude": "*.exe"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["copyAttachments"], body["attachmentMaxBytes"], body["attachmentExclude"]) == (
        False,
        1024,
        "*.exe",
    )
    refused = api.patch("/api/organizations/org-att/", {"attachmentMaxBytes": -1}, format="json")
    assert refused.status_code == 400


def test_clouds_own_attachment_event_is_ignored_not_synced(pair):
    """Cloud's `attachment_created` names no issue; the change comes as jira:issue_updated."""
    w = pair
    original = upload(w, "local", "seen-twice.txt", b"x")
    body = json.dumps(
        {"timestamp": 1, "webhookEvent": "attachment_created", "attachment": original}
    ).encode()
    assert w.feed("local", {"headers": {}}, body=body) == "ignored"
    assert w.feed_all("local") == ["done"]
    assert [a["filename"] for a in attachments(w, "partner")] == ["seen-twice.txt"]
