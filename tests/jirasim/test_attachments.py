"""Attachments in the simulator: upload, metadata, content, deletion, changelog, webhooks."""

from __future__ import annotations

import requests

from .helpers import Api
from .test_webhook_delivery import _register

NO_CHECK = {"X-Atlassian-Token": "no-check"}


def _upload(api: Api, key: str, *files: tuple[str, bytes], headers=NO_CHECK):
    parts = [("file", (name, content, "application/octet-stream")) for name, content in files]
    return api.post(f"/issue/{key}/attachments", files=parts, headers=headers)


def _content(sim, att: dict) -> bytes:
    r = requests.get(att["content"], auth=sim.auth)
    assert r.status_code == 200, r.text
    return r.content


def test_upload_answers_a_list_and_the_issue_shows_each_file(sim):
    api = Api(sim)
    key = api.create()
    added = api.ok(_upload(api, key, ("a.txt", b"alpha"), ("b.bin", b"\x00\x01\x02")))
    assert [a["filename"] for a in added] == ["a.txt", "b.bin"]
    assert [a["size"] for a in added] == [5, 3]
    shown = api.ok(api.get(f"/issue/{key}"))["fields"]["attachment"]
    assert [a["id"] for a in shown] == [a["id"] for a in added]
    meta = api.ok(api.get(f"/attachment/{added[0]['id']}"))
    assert meta["filename"] == "a.txt" and meta["mimeType"] == "text/plain"
    assert _content(sim, added[0]) == b"alpha"
    assert _content(sim, added[1]) == b"\x00\x01\x02"


def test_upload_without_the_xsrf_header_is_refused(sim):
    api = Api(sim)
    key = api.create()
    r = _upload(api, key, ("a.txt", b"alpha"), headers={})
    assert r.status_code == 403
    assert "XSRF" in r.text
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["attachment"] == []


def test_content_is_where_each_flavor_serves_it(sim):
    api = Api(sim)
    key = api.create()
    att = api.ok(_upload(api, key, ("r.txt", b"x")))[0]
    if sim.flavor == "cloud":
        assert "/rest/api/2/attachment/content/" in att["content"]
        r = requests.get(f"{sim.base_url}/rest/api/3/attachment/content/{att['id']}", auth=sim.auth)
        assert r.content == b"x"
    else:
        assert f"/secure/attachment/{att['id']}/r.txt" in att["content"]
        r = requests.get(f"{sim.base_url}/rest/api/2/attachment/content/{att['id']}", auth=sim.auth)
        assert r.status_code == 404


def test_delete_removes_it_and_a_second_delete_is_404(sim):
    api = Api(sim)
    key = api.create()
    att = api.ok(_upload(api, key, ("a.txt", b"alpha")))[0]
    assert api.delete(f"/attachment/{att['id']}").status_code == 204
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["attachment"] == []
    assert api.delete(f"/attachment/{att['id']}").status_code == 404
    assert api.get(f"/attachment/{att['id']}").status_code == 404


def test_changelog_items_and_webhooks_of_add_and_delete(sim, receiver):
    events = ["jira:issue_updated", "attachment_created", "attachment_deleted"]
    _register(sim, receiver.url, events=events)
    api = Api(sim)
    key = api.create()
    att = api.ok(_upload(api, key, ("a.txt", b"alpha")))[0]
    api.delete(f"/attachment/{att['id']}")
    expected = 4 if sim.flavor == "cloud" else 2
    got = [r["json"] for r in receiver.wait_for(expected)]
    updated = [p for p in got if p["webhookEvent"] == "jira:issue_updated"]
    added, removed = (p["changelog"]["items"][0] for p in updated)
    assert added["field"] == "Attachment"
    assert (added["to"], added["toString"], added["from"]) == (att["id"], "a.txt", None)
    assert (removed["from"], removed["fromString"], removed["to"]) == (att["id"], "a.txt", None)
    assert updated[0]["issue"]["fields"]["attachment"][0]["id"] == att["id"]
    kinds = sorted(p["webhookEvent"] for p in got if p["webhookEvent"].startswith("attachment_"))
    if sim.flavor == "cloud":
        assert kinds == ["attachment_created", "attachment_deleted"]
        created = next(p for p in got if p["webhookEvent"] == "attachment_created")
        assert created["attachment"]["id"] == att["id"] and "issue" not in created
    else:
        assert kinds == []


def test_a_lost_upload_answer_still_adds_the_file(sim):
    api = Api(sim)
    key = api.create()
    sim.app.faults.update({"response_lost_count": 1, "path_pattern": "/attachments$"})
    try:
        _upload(api, key, ("lost.txt", b"data"))
        raise AssertionError("the answer should have been lost")
    except requests.ConnectionError:
        pass
    shown = api.ok(api.get(f"/issue/{key}"))["fields"]["attachment"]
    assert [a["filename"] for a in shown] == ["lost.txt"]


def test_an_upload_over_the_site_limit_is_refused_with_413(sim):
    api = Api(sim)
    key = api.create()
    sim.set_options(attachment_max_bytes=10)
    try:
        r = _upload(api, key, ("big.bin", b"x" * 11))
        assert r.status_code == 413 and "too large" in r.text
        assert api.ok(api.get(f"/issue/{key}"))["fields"]["attachment"] == []
    finally:
        sim.options.restore()


def test_a_file_name_with_a_slash_has_a_working_content_url(sim):
    api = Api(sim)
    key = api.create()
    att = api.ok(_upload(api, key, ("a/b c.txt", b"slashed")))[0]
    assert _content(sim, att) == b"slashed"
