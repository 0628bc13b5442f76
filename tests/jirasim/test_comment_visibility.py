"""Comment visibility (role / group) and Jira Service Management internal comments, as Jira
shows them on create, read, expand=properties and in webhooks."""

from __future__ import annotations

import json

from .helpers import Api
from .test_webhook_delivery import _register

INTERNAL = [{"key": "sd.public.comment", "value": {"internal": True}}]


def test_a_comment_keeps_its_visibility_and_internal_flag(sim):
    api = Api(sim)
    key = api.create()
    role = api.ok(
        api.post(
            f"/issue/{key}/comment",
            {"body": "admins only", "visibility": {"type": "role", "value": "Administrators"}},
        ),
        201,
    )
    assert role["visibility"]["type"] == "role" and role["visibility"]["value"] == "Administrators"
    internal = api.ok(
        api.post(f"/issue/{key}/comment", {"body": "agents only", "properties": INTERNAL}), 201
    )
    public = api.ok(api.post(f"/issue/{key}/comment", {"body": "everyone"}), 201)
    assert "visibility" not in public
    if sim.flavor == "cloud":
        assert internal["jsdPublic"] is False and public["jsdPublic"] is True
    page = api.ok(api.get(f"/issue/{key}/comment", params={"expand": "properties"}))
    by_id = {c["id"]: c for c in page["comments"]}
    assert by_id[internal["id"]]["properties"] == INTERNAL
    assert by_id[public["id"]]["properties"] == []
    assert by_id[role["id"]]["visibility"]["value"] == "Administrators"
    # An edit may restrict a comment, or lift the restriction with null.
    api.ok(
        api.put(
            f"/issue/{key}/comment/{public['id']}",
            {"body": "now restricted", "visibility": {"type": "group", "value": "jira-admins"}},
        )
    )
    got = api.ok(api.get(f"/issue/{key}/comment/{public['id']}"))
    assert got["visibility"]["type"] == "group"
    api.ok(api.put(f"/issue/{key}/comment/{public['id']}", {"body": "open", "visibility": None}))
    assert "visibility" not in api.ok(api.get(f"/issue/{key}/comment/{public['id']}"))


def test_a_bad_visibility_is_refused(sim):
    api = Api(sim)
    key = api.create()
    r = api.post(f"/issue/{key}/comment", {"body": "x", "visibility": {"type": "everyone"}})
    assert r.status_code == 400 and "commentLevel" in r.json()["errors"]


def test_webhooks_carry_the_comments_visibility_and_internal_flag(cloud, receiver):
    _register(cloud, receiver.url)
    api = Api(cloud)
    key = api.create()
    api.post(
        f"/issue/{key}/comment",
        {
            "body": "restricted",
            "visibility": {"type": "role", "value": "Developers"},
            "properties": INTERNAL,
        },
    )
    cloud.wait_idle()
    bodies = [json.loads(r["raw"]) for r in receiver.requests]
    comment = next(b for b in bodies if b["webhookEvent"] == "comment_created")["comment"]
    assert comment["visibility"] == {"type": "role", "value": "Developers"}
    assert comment["jsdPublic"] is False
