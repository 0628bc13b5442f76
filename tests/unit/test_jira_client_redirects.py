"""The Jira client never follows a partner's redirect to another origin (SSRF, issue 11)."""

import json

import pytest
import responses

from jiraapi.client import JiraClient, JiraSite
from jiraapi.errors import JiraPermanentError, JiraRedirectRefused

SITE = JiraSite("https://acme.atlassian.net", "cloud", "bot@acme.example", "tok")
ISSUE = "https://acme.atlassian.net/rest/api/3/issue/A-1"


@responses.activate
@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/?token=s3cr3t",  # another host
        "http://acme.atlassian.net/rest/api/3/issue/A-1?token=s3cr3t",  # https -> http
        "https://acme.atlassian.net:8443/rest/api/3/issue/A-1?token=s3cr3t",  # another port
        "//evil.example/x?token=s3cr3t",  # scheme-relative
    ],
)
def test_a_redirect_to_another_origin_is_refused_and_never_followed(target):
    responses.get(ISSUE, status=302, headers={"Location": target})
    with pytest.raises(JiraRedirectRefused) as caught:
        JiraClient(SITE).get_issue("A-1")
    assert len(responses.calls) == 1  # nothing was sent to the other origin
    assert isinstance(caught.value, JiraPermanentError)  # final: retrying cannot help
    assert not caught.value.retryable
    message = str(caught.value)
    assert "redirect" in message and "another origin" in message
    assert "s3cr3t" not in message and "meta-data" not in message  # the origin, not the query


@responses.activate
def test_a_307_never_resends_the_post_body_to_another_origin():
    responses.post(
        "https://acme.atlassian.net/rest/api/3/issue",
        status=307,
        headers={"Location": "http://127.0.0.1:6379/"},
    )
    catch_all = responses.post("http://127.0.0.1:6379/", status=201, json={"id": "9"})
    with pytest.raises(JiraRedirectRefused) as caught:
        JiraClient(SITE).create_issue({"summary": "secret plans"})
    assert catch_all.call_count == 0
    assert len(responses.calls) == 1
    assert "http://127.0.0.1:6379" in str(caught.value)


@responses.activate
def test_a_same_origin_redirect_is_followed():
    responses.get(ISSUE, status=302, headers={"Location": "/rest/api/3/issue/10001"})
    responses.get("https://acme.atlassian.net/rest/api/3/issue/10001", json={"id": "10001"})
    assert JiraClient(SITE).get_issue("A-1") == {"id": "10001"}
    assert len(responses.calls) == 2
    assert responses.calls[1].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_a_same_origin_307_keeps_method_and_body():
    responses.post(
        "https://acme.atlassian.net/rest/api/3/issue",
        status=307,
        headers={"Location": "https://acme.atlassian.net/rest/api/3/issue?moved=1"},
    )
    responses.post("https://acme.atlassian.net/rest/api/3/issue?moved=1", json={"id": "7"})
    assert JiraClient(SITE).create_issue({"summary": "S"}) == {"id": "7"}
    assert json.loads(responses.calls[1].request.body) == {"fields": {"summary": "S"}}


@responses.activate
def test_a_redirect_loop_is_a_clear_final_error():
    responses.get(ISSUE, status=302, headers={"Location": ISSUE})
    with pytest.raises(JiraPermanentError, match="redirects"):
        JiraClient(SITE).get_issue("A-1")
    assert len(responses.calls) <= 11
