"""Project versions created over REST (`POST /rest/api/{2|3}/version`), both flavors, as Jira
answers: 201 with the version, a duplicate name 400, no project-admin right 403."""

from __future__ import annotations

from .helpers import Api


def _api(sim, auth=None) -> Api:
    return Api(sim, "3" if sim.flavor == "cloud" else "2", auth=auth)


def test_a_new_version_is_created_in_its_project_and_answered_201(sim):
    api = _api(sim)
    project = api.ok(api.get("/project/ENG"))
    made = api.ok(api.post("/version", {"name": "3.1", "projectId": int(project["id"])}), 201)
    assert made["name"] == "3.1"
    assert made["projectId"] == int(project["id"])
    assert made["released"] is False and made["archived"] is False
    assert made["self"].endswith(f"/version/{made['id']}")
    names = [v["name"] for v in api.ok(api.get("/project/ENG"))["versions"]]
    assert "3.1" in names
    listed = api.ok(api.get("/project/ENG/versions"))
    assert made["id"] in [v["id"] for v in listed]
    assert api.ok(api.get(f"/version/{made['id']}"))["name"] == "3.1"


def test_a_version_can_name_its_project_by_key_and_is_then_usable_on_issues(sim):
    api = _api(sim)
    api.ok(api.post("/version", {"name": "4.0", "project": "ENG"}), 201)
    key = api.create(fixVersions=[{"name": "4.0"}])
    issue = api.ok(api.get(f"/issue/{key}"))
    assert [v["name"] for v in issue["fields"]["fixVersions"]] == ["4.0"]


def test_a_version_is_created_only_in_the_project_named(sim):
    api = _api(sim)
    api.ok(api.post("/version", {"name": "9.9", "project": "OPS"}), 201)
    assert "9.9" not in [v["name"] for v in api.ok(api.get("/project/ENG"))["versions"]]
    key = api.create()
    refused = api.put(f"/issue/{key}", {"fields": {"fixVersions": [{"name": "9.9"}]}})
    assert refused.status_code == 400
    assert "fixVersions" in refused.json()["errors"]


def test_a_duplicate_name_is_refused_with_400_whatever_its_case(sim):
    api = _api(sim)
    r = api.post("/version", {"name": "1.0", "project": "ENG"})
    assert r.status_code == 400
    assert "name" in r.json()["errors"]
    api.ok(api.post("/version", {"name": "Beta", "project": "ENG"}), 201)
    assert api.post("/version", {"name": "beta", "project": "ENG"}).status_code == 400


def test_a_version_without_a_name_or_a_project_is_refused(sim):
    api = _api(sim)
    assert api.post("/version", {"project": "ENG"}).status_code == 400
    assert api.post("/version", {"name": "5.0"}).status_code == 400
    assert api.post("/version", {"name": "5.0", "project": "NOPE"}).status_code == 404


def test_an_account_without_project_admin_rights_gets_403(sim):
    api = _api(sim, auth=("dev@example.com", "dev-token"))
    r = api.post("/version", {"name": "6.0", "project": "ENG"})
    assert r.status_code == 403
    assert r.json()["errorMessages"]
    admin = _api(sim)
    assert "6.0" not in [v["name"] for v in admin.ok(admin.get("/project/ENG"))["versions"]]
