"""Narrow tests of the Jira client's transport: auth, error sorting, paging."""

import pytest
import requests
import responses

from jiraapi.client import JiraClient, JiraSite, counting_calls, parse_retry_after
from jiraapi.errors import (
    JiraAuthError,
    JiraNotFound,
    JiraPermanentError,
    JiraRateLimited,
    JiraTransientError,
)

CLOUD = JiraSite("https://acme.atlassian.net", "cloud", "bot@acme.example", "tok")
DC = JiraSite("https://jira.acme.example", "datacenter", "", "pat-123")


@responses.activate
def test_cloud_uses_rest_v3_and_basic_auth():
    responses.get("https://acme.atlassian.net/rest/api/3/issue/A-1", json={"id": "1"})
    assert JiraClient(CLOUD).get_issue("A-1") == {"id": "1"}
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_data_center_uses_rest_v2_and_a_bearer_token():
    responses.get("https://jira.acme.example/rest/api/2/issue/A-1", json={"id": "1"})
    JiraClient(DC).get_issue("A-1")
    assert responses.calls[0].request.headers["Authorization"] == "Bearer pat-123"


@responses.activate
def test_429_carries_retry_after():
    responses.put(
        "https://acme.atlassian.net/rest/api/3/issue/A-1",
        status=429,
        headers={"Retry-After": "7"},
        json={"errorMessages": ["Rate limit exceeded."]},
    )
    with pytest.raises(JiraRateLimited) as excinfo:
        JiraClient(CLOUD).edit_issue("A-1", {"summary": "x"})
    assert excinfo.value.retry_after == 7
    assert excinfo.value.retryable
    assert excinfo.value.jira_message == "Rate limit exceeded."


@responses.activate
def test_503_with_retry_after_is_a_rate_limit_and_500_is_transient():
    url = "https://acme.atlassian.net/rest/api/3/issue/A-1"
    responses.get(url, status=503, headers={"Retry-After": "3"})
    responses.get(url, status=500, body="oops")
    client = JiraClient(CLOUD)
    with pytest.raises(JiraRateLimited):
        client.get_issue("A-1")
    with pytest.raises(JiraTransientError) as excinfo:
        client.get_issue("A-1")
    assert not isinstance(excinfo.value, JiraRateLimited)


@responses.activate
def test_4xx_are_permanent_and_carry_jiras_message():
    url = "https://acme.atlassian.net/rest/api/3/issue"
    responses.post(
        url,
        status=400,
        json={"errorMessages": [], "errors": {"priority": "Specify a valid priority."}},
    )
    with pytest.raises(JiraPermanentError) as excinfo:
        JiraClient(CLOUD).create_issue({"summary": "x"})
    assert not excinfo.value.retryable
    assert excinfo.value.errors == {"priority": "Specify a valid priority."}
    assert "priority: Specify a valid priority." in excinfo.value.jira_message


@responses.activate
def test_404_and_401_have_their_own_errors():
    responses.get("https://acme.atlassian.net/rest/api/3/issue/NOPE-1", status=404, json={})
    responses.get("https://acme.atlassian.net/rest/api/3/myself", status=401, body="")
    client = JiraClient(CLOUD)
    with pytest.raises(JiraNotFound):
        client.get_issue("NOPE-1")
    with pytest.raises(JiraAuthError):
        client.myself()


@responses.activate
def test_network_errors_are_transient():
    responses.get(
        "https://acme.atlassian.net/rest/api/3/issue/A-1",
        body=requests.ConnectionError("refused"),
    )
    with pytest.raises(JiraTransientError):
        JiraClient(CLOUD).get_issue("A-1")


@responses.activate
def test_cloud_search_follows_next_page_tokens():
    url = "https://acme.atlassian.net/rest/api/3/search/jql"
    responses.post(url, json={"issues": [{"key": "A-1"}], "nextPageToken": "t2", "isLast": False})
    responses.post(url, json={"issues": [{"key": "A-2"}], "isLast": True})
    keys = [i["key"] for i in JiraClient(CLOUD).search("project = A")]
    assert keys == ["A-1", "A-2"]
    assert b'"nextPageToken": "t2"' in responses.calls[1].request.body


@responses.activate
def test_data_center_search_pages_with_start_at():
    url = "https://jira.acme.example/rest/api/2/search"
    responses.post(url, json={"issues": [{"key": "A-1"}], "total": 2, "startAt": 0})
    responses.post(url, json={"issues": [{"key": "A-2"}], "total": 2, "startAt": 1})
    keys = [i["key"] for i in JiraClient(DC).search("project = A", page_size=1)]
    assert keys == ["A-1", "A-2"]


@responses.activate
def test_create_sends_entity_properties_and_counts_calls():
    responses.post("https://acme.atlassian.net/rest/api/3/issue", json={"id": "9", "key": "A-9"})
    responses.get("https://acme.atlassian.net/rest/api/3/issue/A-9", json={"id": "9"})
    client = JiraClient(CLOUD)
    with counting_calls() as outer:
        with counting_calls() as inner:
            client.create_issue({"summary": "x"}, properties={"jira-sync.link": {"linkId": 4}})
        client.get_issue("A-9")  # counted by the outer block only
    body = responses.calls[0].request.body
    assert b'"properties": [{"key": "jira-sync.link", "value": {"linkId": 4}}]' in body
    assert (outer.count, inner.count) == (2, 1)


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("5") == 5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert parse_retry_after("garbage") is None


def test_a_site_never_shows_its_token():
    assert "tok" not in repr(JiraSite("https://x.example", "cloud", "u", "tok"))
