"""REST behaviour of both flavors: auth, errors, fields, search, properties, links, pages."""

from __future__ import annotations

import json
import time

import pytest
import requests

from jirasim.testing import running_sim, sim_process

from .helpers import Api, full_fields


# ---------------------------------------------------------------- auth
def test_missing_or_wrong_credentials_get_401_in_jira_shape(sim):
    url = sim.base_url + "/rest/api/2/myself"
    for auth in (None, ("admin@example.com", "wrong"), ("nobody@example.com", "secret-token")):
        r = requests.get(url, auth=auth)
        assert r.status_code == 401
        assert set(r.json()) == {"errorMessages", "errors"}


def test_bearer_pat_only_on_datacenter(sim):
    r = requests.get(
        sim.base_url + "/rest/api/2/myself", headers={"Authorization": "Bearer secret-token"}
    )
    assert r.status_code == (200 if sim.flavor == "datacenter" else 401)


def test_datacenter_basic_accepts_username(dc):
    assert requests.get(dc.base_url + "/rest/api/2/myself", auth=("admin", "secret-token")).ok


def test_server_info_reports_deployment_type(sim):
    info = requests.get(sim.base_url + "/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == ("Cloud" if sim.flavor == "cloud" else "Server")


def test_datacenter_has_no_rest_v3(dc):
    assert requests.get(dc.base_url + "/rest/api/3/myself", auth=dc.auth).status_code == 404


def test_cloud_removed_the_old_search(cloud):
    r = requests.get(cloud.base_url + "/rest/api/3/search?jql=project=ENG", auth=cloud.auth)
    assert r.status_code == 410


# ---------------------------------------------------------------- issues
def test_create_answers_201_with_id_key_self(sim):
    api = Api(sim)
    r = api.post(
        "/issue",
        {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "s"}},
    )
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"id", "key", "self"} and body["key"] == "ENG-1"


def test_create_validation_errors_per_field(sim):
    api = Api(sim)
    r = api.post("/issue", {"fields": {"project": {"key": "NOPE"}, "summary": ""}})
    assert r.status_code == 400
    errs = r.json()["errors"]
    assert "project" in errs and "issuetype" in errs
    r = api.post(
        "/issue",
        {
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "x",
                "priority": {"name": "Nope"},
                "bogus": 1,
                "duedate": "tomorrow",
            }
        },
    )
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"priority", "bogus", "duedate"}
    assert api.get("/issue/ENG-1").status_code == 404


def test_edit_answers_204_and_rejects_status_and_bad_values(sim):
    api = Api(sim)
    key = api.create()
    assert api.put(f"/issue/{key}", {"fields": {"summary": "new"}}).status_code == 204
    r = api.put(f"/issue/{key}", {"fields": {"status": {"name": "Done"}}})
    assert r.status_code == 400 and "status" in r.json()["errors"]
    r = api.put(f"/issue/{key}", {"fields": {"issuetype": {"name": "Nope"}}})
    assert r.status_code == 400 and "issuetype" in r.json()["errors"]
    r = api.put(f"/issue/{key}", {"fields": {"customfield_10011": "three"}})
    assert r.status_code == 400 and "customfield_10011" in r.json()["errors"]
    assert api.get(f"/issue/{key}").json()["fields"]["summary"] == "new"
    assert api.put("/issue/ENG-404", {"fields": {"summary": "x"}}).status_code == 404


def test_update_operations_on_labels(sim):
    api = Api(sim)
    key = api.create(labels=["a", "b"])
    body = {"update": {"labels": [{"add": "c"}, {"remove": "a"}]}}
    assert api.put(f"/issue/{key}", body).status_code == 204
    assert api.get(f"/issue/{key}").json()["fields"]["labels"] == ["b", "c"]


def test_get_with_fields_filter_and_changelog(sim):
    api = Api(sim)
    key = api.create(**full_fields(api))
    api.ok(api.put(f"/issue/{key}", {"fields": {"priority": {"name": "Low"}}}), 204)
    got = api.ok(
        api.get(f"/issue/{key}", params={"fields": "summary,priority", "expand": "changelog"})
    )
    assert set(got["fields"]) == {"summary", "priority"}
    hist = got["changelog"]["histories"]
    assert hist[-1]["items"][0]["field"] == "priority"
    assert hist[-1]["items"][0]["fromString"] == "High"
    assert hist[-1]["items"][0]["toString"] == "Low"
    assert hist[-1]["id"]
    full = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert full["components"][0]["name"] == "Backend"
    assert full["customfield_10012"]["value"] == "Major"
    assert full["duedate"] == "2030-01-31"


def test_transitions_list_reachable_ones_and_ids_differ_by_flavor(sim):
    api = Api(sim)
    key = api.create()
    ts = api.ok(api.get(f"/issue/{key}/transitions"))["transitions"]
    targets = sorted(t["to"]["name"] for t in ts)
    assert targets == ["Done", "In Progress"]
    ids = {t["to"]["name"]: t["id"] for t in ts}
    expected = {
        "cloud": {"In Progress": "21", "Done": "31"},
        "datacenter": {"In Progress": "4", "Done": "5"},
    }
    assert ids == expected[sim.flavor]
    r = api.post(f"/issue/{key}/transitions", {"transition": {"id": "999"}})
    assert r.status_code == 400 and r.json()["errorMessages"]


def test_resolution_set_entering_done_and_cleared_leaving_it(sim):
    api = Api(sim)
    key = api.create()
    api.transition_to(key, "Done")
    f = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert f["resolution"]["name"] == "Done" and f["resolutiondate"]
    assert f["status"]["statusCategory"]["key"] == "done"
    api.transition_to(key, "To Do")
    f = api.ok(api.get(f"/issue/{key}"))["fields"]
    assert f["resolution"] is None and f["resolutiondate"] is None


def test_transition_with_resolution_field(sim):
    api = Api(sim)
    key = api.create()
    ts = api.ok(api.get(f"/issue/{key}/transitions", params={"expand": "transitions.fields"}))
    done = next(t for t in ts["transitions"] if t["to"]["name"] == "Done")
    assert "resolution" in done["fields"]
    body = {"transition": {"id": done["id"]}, "fields": {"resolution": {"name": "Won't Do"}}}
    api.ok(api.post(f"/issue/{key}/transitions", body), 204)
    assert api.ok(api.get(f"/issue/{key}"))["fields"]["resolution"]["name"] == "Won't Do"


def test_delete_needs_delete_subtasks_when_it_has_some(sim):
    api = Api(sim)
    parent = api.create()
    child = api.create(issuetype={"name": "Sub-task"}, parent={"key": parent})
    assert api.ok(api.get(f"/issue/{child}"))["fields"]["parent"]["key"] == parent
    assert api.delete(f"/issue/{parent}").status_code == 400
    assert api.delete(f"/issue/{parent}", params={"deleteSubtasks": "true"}).status_code == 204
    assert api.get(f"/issue/{child}").status_code == 404


def test_assignee_by_account_id_on_cloud_and_name_on_datacenter(sim):
    api = Api(sim)
    dev = sim.store.find_user("dev@example.com")
    key = api.create(assignee=api.user_ref("dev@example.com"))
    a = api.ok(api.get(f"/issue/{key}"))["fields"]["assignee"]
    if sim.flavor == "cloud":
        assert a["accountId"] == dev["accountId"] and "name" not in a
    else:
        assert a["name"] == "dev" and "accountId" not in a
    bad = {"accountId": "nope"} if sim.flavor == "cloud" else {"name": "nope"}
    assert api.put(f"/issue/{key}", {"fields": {"assignee": bad}}).status_code == 400


# ---------------------------------------------------------------- v3 / ADF
def test_cloud_v3_speaks_adf_and_v2_speaks_wiki(cloud):
    v3, v2 = Api(cloud, "3"), Api(cloud, "2")
    key = v3.create(description=cloud.adf("Hello *world*\n\nSecond paragraph"))
    d3 = v3.ok(v3.get(f"/issue/{key}"))["fields"]["description"]
    assert d3["type"] == "doc" and len(d3["content"]) == 2
    assert v2.ok(v2.get(f"/issue/{key}"))["fields"]["description"] == (
        "Hello *world*\n\nSecond paragraph"
    )
    r = v3.put(f"/issue/{key}", {"fields": {"description": "plain string"}})
    assert r.status_code == 400 and "description" in r.json()["errors"]
    c = v3.ok(v3.post(f"/issue/{key}/comment", {"body": cloud.adf("hi")}), 201)
    assert c["body"]["type"] == "doc"
    assert v3.post(f"/issue/{key}/comment", {"body": "plain"}).status_code == 400


# ---------------------------------------------------------------- comments
def test_comment_crud(sim):
    api = Api(sim)
    key = api.create()
    c = api.ok(api.post(f"/issue/{key}/comment", {"body": "one"}), 201)
    assert c["author"]["displayName"] and c["created"]
    api.ok(api.put(f"/issue/{key}/comment/{c['id']}", {"body": "uno"}), 200)
    page = api.ok(api.get(f"/issue/{key}/comment"))
    assert page["total"] == 1 and page["comments"][0]["body"] == "uno"
    assert api.delete(f"/issue/{key}/comment/{c['id']}").status_code == 204
    assert api.get(f"/issue/{key}/comment/{c['id']}").status_code == 404
    assert api.post(f"/issue/{key}/comment", {"body": ""}).status_code == 400


# ---------------------------------------------------------------- search
def _seed(api):
    api.create(summary="one", issuetype={"name": "Bug"})
    api.create(summary="two")
    k3 = api.create(summary="three")
    api.transition_to(k3, "In Progress")
    api.ok(
        api.post(
            "/issue",
            {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "o"}},
        ),
        201,
    )


def _search(sim, jql, **params):
    api = Api(sim)
    if sim.flavor == "cloud":
        r = api.post("/search/jql", {"jql": jql, "fields": ["summary"], **params})
    else:
        r = api.get("/search", params={"jql": jql, "fields": "summary", **params})
    return r


@pytest.mark.parametrize(
    "jql,keys",
    [
        ("project = ENG ORDER BY key ASC", ["ENG-1", "ENG-2", "ENG-3"]),
        ("project in (ENG, OPS) ORDER BY key DESC", ["OPS-1", "ENG-3", "ENG-2", "ENG-1"]),
        ("key in (ENG-1, ENG-3) ORDER BY key ASC", ["ENG-1", "ENG-3"]),
        ("issuetype = Bug", ["ENG-1"]),
        ('status = "In Progress"', ["ENG-3"]),
        ("status in ('To Do', Done) AND project = ENG ORDER BY key ASC", ["ENG-1", "ENG-2"]),
        (
            "project = OPS OR (project = ENG AND issuetype = Bug) ORDER BY key ASC",
            ["ENG-1", "OPS-1"],
        ),
        ("updated >= -5m AND project = OPS", ["OPS-1"]),
        ('updated >= "2000-01-01 00:00" AND project = OPS', ["OPS-1"]),
        ("updated < -1d AND project = ENG", []),
        ('summary ~ "thr"', ["ENG-3"]),
    ],
)
def test_jql_subset(sim, jql, keys):
    _seed(Api(sim))
    r = _search(sim, jql)
    assert r.status_code == 200, r.text
    got = r.json()["issues"]
    assert [i["key"] for i in got] == keys


@pytest.mark.parametrize(
    "jql", ["project = NOPE", "nofield = 1", "project = ENG AND", "key in (ENG-99)"]
)
def test_invalid_jql_is_a_400(sim, jql):
    _seed(Api(sim))
    r = _search(sim, jql)
    assert r.status_code == 400
    assert r.json()["errorMessages"]


def test_cloud_search_pages_with_next_page_token(cloud):
    api = Api(cloud, "3")
    for n in range(5):
        api.create(summary=f"s{n}")
    seen, token = [], None
    while True:
        body = {"jql": "project = ENG ORDER BY key ASC", "maxResults": 2, "fields": ["summary"]}
        if token:
            body["nextPageToken"] = token
        page = api.ok(api.post("/search/jql", body))
        assert "total" not in page
        seen += [i["key"] for i in page["issues"]]
        if page["isLast"]:
            assert "nextPageToken" not in page
            break
        token = page["nextPageToken"]
    assert seen == [f"ENG-{n}" for n in range(1, 6)]
    r = api.get("/search/jql", params={"jql": "project = ENG", "maxResults": 2})
    assert r.json()["issues"][0] == {"id": r.json()["issues"][0]["id"]}  # ids only by default
    assert api.get("/search/jql", params={"jql": "order by key"}).status_code == 400  # unbounded


def test_datacenter_search_pages_with_start_at(dc):
    api = Api(dc)
    for n in range(5):
        api.create(summary=f"s{n}")
    page = api.ok(
        api.get(
            "/search",
            params={"jql": "project = ENG ORDER BY key ASC", "startAt": 2, "maxResults": 2},
        )
    )
    assert page["total"] == 5 and page["startAt"] == 2 and page["maxResults"] == 2
    assert [i["key"] for i in page["issues"]] == ["ENG-3", "ENG-4"]


# ---------------------------------------------------------------- metadata
def test_myself_field_and_user_search(sim):
    api = Api(sim)
    me = api.ok(api.get("/myself"))
    assert me["displayName"]
    fields = api.ok(api.get("/field"))
    custom = {f["id"]: f for f in fields if f["custom"]}
    assert custom["customfield_10010"]["schema"]["type"] == "string"
    assert any(f["id"] == "summary" for f in fields)
    param = {"query": "dev"} if sim.flavor == "cloud" else {"username": "dev"}
    users = api.ok(api.get("/user/search", params=param))
    assert [u["emailAddress"] for u in users] == ["dev@example.com"]


# ---------------------------------------------------------------- properties and links
def test_issue_properties(sim):
    api = Api(sim)
    key = api.create()
    assert api.put(f"/issue/{key}/properties/sync", {"origin": "app", "v": 1}).status_code == 201
    assert api.put(f"/issue/{key}/properties/sync", {"origin": "app", "v": 2}).status_code == 200
    assert api.ok(api.get(f"/issue/{key}/properties/sync"))["value"] == {"origin": "app", "v": 2}
    assert [k["key"] for k in api.ok(api.get(f"/issue/{key}/properties"))["keys"]] == ["sync"]
    assert api.delete(f"/issue/{key}/properties/sync").status_code == 204
    assert api.get(f"/issue/{key}/properties/sync").status_code == 404


def test_create_with_properties(sim):
    api = Api(sim)
    r = api.post(
        "/issue",
        {
            "fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "s"},
            "properties": [{"key": "sync.origin", "value": {"id": "abc"}}],
        },
    )
    key = api.ok(r, 201)["key"]
    assert api.ok(api.get(f"/issue/{key}/properties/sync.origin"))["value"] == {"id": "abc"}


def test_remote_links(sim):
    api = Api(sim)
    key = api.create()
    body = {"globalId": "app:1", "object": {"url": "https://app.example/1", "title": "App item 1"}}
    first = api.ok(api.post(f"/issue/{key}/remotelink", body), 201)
    again = api.ok(api.post(f"/issue/{key}/remotelink", body), 200)
    assert first["id"] == again["id"]
    links = api.ok(api.get(f"/issue/{key}/remotelink"))
    assert [link["object"]["title"] for link in links] == ["App item 1"]
    assert api.post(f"/issue/{key}/remotelink", {"object": {}}).status_code == 400
    assert api.delete(f"/issue/{key}/remotelink/{first['id']}").status_code == 204


# ---------------------------------------------------------------- pages, process, state
def test_html_pages_list_issues_and_show_one(sim):
    api = Api(sim)
    key = api.create(summary="Visible <summary>")
    api.ok(api.post(f"/issue/{key}/comment", {"body": "a comment"}), 201)
    index = requests.get(sim.base_url + "/").text
    assert key in index and "Visible &lt;summary&gt;" in index
    page = requests.get(sim.base_url + f"/browse/{key}").text
    assert "a comment" in page


def test_state_saves_and_loads(tmp_path):
    path = str(tmp_path / "state.json")
    with running_sim(flavor="cloud", projects=["ENG"], state_file=path) as sim:
        Api(sim).create(summary="persisted")
    with open(path) as fh:
        assert json.load(fh)["issues"]
    with running_sim(flavor="cloud", projects=["ENG"], state_file=path) as sim:
        api = Api(sim)
        assert api.ok(api.get("/issue/ENG-1"))["fields"]["summary"] == "persisted"
        assert api.create() == "ENG-2"


def test_runs_as_a_process_and_starts_fast():
    start = time.monotonic()
    with sim_process(
        flavor="datacenter", args=["--project", "OPS:Operations", "--user", "me@x.io:tok"]
    ) as url:
        elapsed = time.monotonic() - start
        r = requests.get(url + "/rest/api/2/project/OPS", headers={"Authorization": "Bearer tok"})
        assert r.status_code == 200 and r.json()["name"] == "Operations"
    assert elapsed < 3


def test_v3_answers_carry_v3_self_links(cloud):
    api = Api(cloud, "3")
    key = api.create()
    got = api.ok(api.get(f"/issue/{key}"))
    assert "/rest/api/3/" in got["fields"]["status"]["self"]
    assert (
        "/rest/api/2/" in Api(cloud).ok(Api(cloud).get(f"/issue/{key}"))["fields"]["status"]["self"]
    )


def test_state_file_keeps_webhooks(tmp_path, receiver):
    path = str(tmp_path / "state.json")
    with running_sim(flavor="datacenter", projects=["ENG"], state_file=path) as sim:
        sim.register_webhook(receiver.url, events=["jira:issue_created"])
        assert requests.post(sim.base_url + "/_sim/save").status_code == 204
    with running_sim(flavor="datacenter", projects=["ENG"], state_file=path) as sim:
        Api(sim).create()
        receiver.wait_for(1)
        assert sim.register_webhook(receiver.url) == 2


def test_process_saves_state_on_sigterm(tmp_path):
    path = tmp_path / "site.json"
    with sim_process(flavor="cloud", args=["--project", "ENG", "--state", str(path)]) as url:
        r = requests.post(
            url + "/rest/api/2/issue",
            json={
                "fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "k"}
            },
            auth=("admin@example.com", "secret-token"),
        )
        assert r.status_code == 201
    with sim_process(flavor="cloud", args=["--project", "ENG", "--state", str(path)]) as url:
        r = requests.get(
            url + "/rest/api/2/issue/ENG-1", auth=("admin@example.com", "secret-token")
        )
        assert r.json()["fields"]["summary"] == "k"


def test_concurrent_writers_get_distinct_keys_and_every_webhook(sim, receiver):
    from concurrent.futures import ThreadPoolExecutor

    sim.register_webhook(receiver.url, events=["jira:issue_created"])

    def make(n):
        return Api(sim).create(summary=f"c{n}")

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(make, range(40)))
    assert len(set(keys)) == 40
    got = receiver.wait_for(40)
    assert {r["json"]["issue"]["key"] for r in got} == set(keys)


def test_issue_expand_transitions_and_rendered_fields(sim):
    api = Api(sim)
    key = api.create(description="a <b>\n\nsecond")
    got = api.ok(api.get(f"/issue/{key}", params={"expand": "transitions,renderedFields"}))
    assert {t["to"]["name"] for t in got["transitions"]} == {"In Progress", "Done"}
    assert got["renderedFields"]["description"] == "<p>a &lt;b&gt;</p><p>second</p>"
