"""The Jira client reads proxies and the CA bundle from the environment once, when it is
made, not on every call; what it reads is what requests itself would use for that site."""

from __future__ import annotations

import requests

from jiraapi.client import CLOUD, JiraClient, JiraSite
from jiraapi.transport import environment_read_once


def _client(base_url: str) -> JiraClient:
    return JiraClient(JiraSite(base_url=base_url, flavor=CLOUD, user="u", token="t"))


def test_proxies_come_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    client = _client("https://partner.atlassian.net")
    assert client.session.trust_env is False
    assert client.session.proxies["https"] == "http://proxy.example:3128"
    # What requests would have merged on each call, had it read the environment then.
    expected = requests.Session().merge_environment_settings(
        "https://partner.atlassian.net/rest/api/3/myself", {}, None, None, None
    )
    assert client.session.proxies["https"] == expected["proxies"]["https"]


def test_no_proxy_is_honoured_for_the_site(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    client = _client("https://jira.internal.example")
    assert "https" not in client.session.proxies


def test_ca_bundle_from_the_environment(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert _client("https://partner.atlassian.net").session.verify == str(bundle)


def test_a_session_setting_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = requests.Session()
    session.proxies["https"] = "http://mine.example:8080"
    session.verify = False
    environment_read_once(session, "https://partner.atlassian.net")
    assert session.proxies["https"] == "http://mine.example:8080"
    assert session.verify is False
