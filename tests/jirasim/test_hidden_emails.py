"""The `hide_emails` realism option: users' e-mail addresses are hidden as Jira Cloud's
profile visibility (or a Data Center site's hidden e-mail setting) hides them."""

from __future__ import annotations

import json

import pytest

from .helpers import Api

pytestmark = pytest.mark.usefixtures("hidden")


@pytest.fixture
def hidden(sim):
    sim.set_options(hide_emails=True)
    try:
        yield
    finally:
        sim.options.restore()


def _emails(node) -> list[str]:
    """Every emailAddress anywhere in a JSON value."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "emailAddress":
                found.append(value)
            else:
                found += _emails(value)
    elif isinstance(node, list):
        for value in node:
            found += _emails(value)
    return found


def test_only_the_caller_sees_their_own_address(sim):
    admin, dev = Api(sim), Api(sim, auth=("dev@example.com", "dev-token"))
    assert admin.ok(admin.get("/myself"))["emailAddress"] == "admin@example.com"
    assert dev.ok(dev.get("/myself"))["emailAddress"] == "dev@example.com"
    key = admin.create(assignee=admin.user_ref("dev@example.com"))
    admin.ok(admin.post(f"/issue/{key}/comment", {"body": "hello"}), 201)

    seen_by_admin = admin.ok(admin.get(f"/issue/{key}"))
    assert "emailAddress" not in seen_by_admin["fields"]["assignee"]  # dev's, hidden
    assert _emails(seen_by_admin) == ["admin@example.com"] * len(_emails(seen_by_admin))
    assert seen_by_admin["fields"]["reporter"]["emailAddress"] == "admin@example.com"
    seen_by_dev = dev.ok(dev.get(f"/issue/{key}"))
    assert seen_by_dev["fields"]["assignee"]["emailAddress"] == "dev@example.com"
    assert "emailAddress" not in seen_by_dev["fields"]["reporter"]
    comments = dev.ok(dev.get(f"/issue/{key}/comment"))["comments"]
    assert _emails(comments) == []


def test_search_by_a_hidden_address_finds_nobody_and_by_name_hides_it(sim):
    api = Api(sim)
    param = "query" if sim.flavor == "cloud" else "username"
    assert api.ok(api.get("/user/search", params={param: "dev@example.com"})) == []
    by_name = api.ok(api.get("/user/search", params={param: "dev"}))
    assert [u["displayName"] for u in by_name] == ["Dev"]
    assert _emails(by_name) == []
    own = api.ok(api.get("/user/search", params={param: "admin@example.com"}))
    assert [u["emailAddress"] for u in own] == ["admin@example.com"]
    ident = {"accountId": sim.user("dev@example.com")["accountId"]}
    if sim.flavor != "cloud":
        ident = {"username": "dev"}
    assert "emailAddress" not in api.ok(api.get("/user", params=ident))


def test_webhooks_carry_no_address_not_even_the_actors(sim, receiver):
    sim.register_webhook(receiver.url)
    api = Api(sim)
    key = api.create(assignee=api.user_ref("dev@example.com"))
    api.ok(api.post(f"/issue/{key}/comment", {"body": "hello"}), 201)
    api.ok(api.put(f"/issue/{key}", {"fields": {"summary": "changed"}}), 204)
    sim.wait_idle()
    bodies = [json.loads(r["raw"]) for r in receiver.requests]
    assert len(bodies) >= 3
    assert all(_emails(body) == [] for body in bodies)
    actors = [b["user"] for b in bodies if "user" in b]
    assert actors and all(a["displayName"] == "Admin" for a in actors)


def test_the_friendly_default_shows_every_address(sim):
    sim.options.restore()
    api = Api(sim)
    key = api.create(assignee=api.user_ref("dev@example.com"))
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["assignee"]["emailAddress"] == (
        "dev@example.com"
    )
