"""Small REST helpers shared by the jirasim tests (plain requests, no Jira client)."""

from __future__ import annotations

import requests


class Api:
    def __init__(self, sim, version: str = "2", auth=None):
        self.sim = sim
        self.base = f"{sim.base_url}/rest/api/{version}"
        self.s = requests.Session()
        self.s.auth = auth or sim.auth

    def get(self, path, **kw):
        return self.s.get(self.base + path, **kw)

    def post(self, path, json=None, **kw):
        return self.s.post(self.base + path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.s.put(self.base + path, json=json, **kw)

    def delete(self, path, **kw):
        return self.s.delete(self.base + path, **kw)

    def ok(self, resp, status=None):
        if status is not None:
            assert resp.status_code == status, (resp.status_code, resp.text)
        else:
            assert resp.status_code < 300, (resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def user_ref(self, email: str) -> dict:
        u = self.sim.store.find_user(email)
        return {"accountId": u["accountId"]} if self.sim.flavor == "cloud" else {"name": u["name"]}

    def create(self, **fields) -> str:
        body = {
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "A summary",
                **fields,
            }
        }
        return self.ok(self.post("/issue", body), 201)["key"]

    def transition_to(self, key: str, status_name: str) -> None:
        ts = self.ok(self.get(f"/issue/{key}/transitions"))["transitions"]
        tid = next(t["id"] for t in ts if t["to"]["name"] == status_name)
        self.ok(self.post(f"/issue/{key}/transitions", {"transition": {"id": tid}}), 204)


def full_fields(api: Api) -> dict:
    """Field values that give every modelled field a value (so payload lists are non-empty)."""
    return {
        "description": "The *good* description",
        "priority": {"name": "High"},
        "labels": ["alpha", "beta"],
        "duedate": "2030-01-31",
        "environment": "staging",
        "components": [{"name": "Backend"}],
        "fixVersions": [{"name": "1.0"}],
        "versions": [{"name": "1.0"}],
        "customfield_10010": "EXT-1",
        "customfield_10011": 3,
        "customfield_10012": {"value": "Major"},
        "customfield_10013": "Some notes",
        "customfield_10014": "2030-02-01",
    }
