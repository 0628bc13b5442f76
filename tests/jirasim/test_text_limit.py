"""Jira refuses a multi-line text field (description, textarea, comment) over 32,767
characters with a 400 naming the field; ADF (REST v3) is measured by its text."""

from __future__ import annotations

from jirasim.parse import TEXT_LIMIT

from .helpers import Api

TOO_LONG = "The entered text is too long. It exceeds the allowed limit of 32,767 characters."


def _doc(text: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def test_text_over_the_limit_is_refused_on_create_edit_and_comment(sim):
    api = Api(sim)
    long = "x" * (TEXT_LIMIT + 1)
    r = api.post(
        "/issue",
        {
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "s",
                "description": long,
            }
        },
    )
    assert r.status_code == 400 and r.json()["errors"] == {"description": TOO_LONG}
    key = api.create(description="x" * TEXT_LIMIT)
    r = api.put(f"/issue/{key}", {"fields": {"customfield_10013": long}})
    assert r.status_code == 400 and r.json()["errors"] == {"customfield_10013": TOO_LONG}
    r = api.post(f"/issue/{key}/comment", {"body": long})
    assert r.status_code == 400 and r.json()["errors"] == {"comment": TOO_LONG}
    c = api.ok(api.post(f"/issue/{key}/comment", {"body": "short"}), 201)
    r = api.put(f"/issue/{key}/comment/{c['id']}", {"body": long})
    assert r.status_code == 400 and r.json()["errors"] == {"comment": TOO_LONG}
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["description"] == "x" * TEXT_LIMIT


def test_adf_is_measured_by_its_text(cloud):
    api = Api(cloud, version="3")
    key = Api(cloud).create()
    api.ok(api.put(f"/issue/{key}", {"fields": {"description": _doc("y" * TEXT_LIMIT)}}), 204)
    r = api.put(f"/issue/{key}", {"fields": {"description": _doc("y" * (TEXT_LIMIT + 1))}})
    assert r.status_code == 400 and r.json()["errors"] == {"description": TOO_LONG}
    r = api.post(f"/issue/{key}/comment", {"body": _doc("z" * (TEXT_LIMIT + 1))})
    assert r.status_code == 400 and r.json()["errors"] == {"comment": TOO_LONG}


def test_data_centers_limit_can_be_lifted(dc):
    dc.set_options(dc_text_limit=0)
    api = Api(dc)
    key = api.create(description="x" * (TEXT_LIMIT + 100))
    api.ok(api.post(f"/issue/{key}/comment", {"body": "y" * (TEXT_LIMIT + 100)}), 201)
    assert len(api.ok(api.get(f"/issue/{key}"))["fields"]["description"]) == TEXT_LIMIT + 100
