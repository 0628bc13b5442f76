"""The Jira URL policy (jiraapi.urlpolicy): which partner/local Jira URLs we may call."""

import pytest

from jiraapi.urlpolicy import UnsafeUrl, UrlPolicy

STRICT = UrlPolicy.build(allow_http=False, allowed_hosts=())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://jira.example.com/", "http"),
        ("file:///etc/passwd", "http"),
        ("gopher://jira.example.com/", "http"),
        ("http://jira.example.com/", "https"),
        ("https://169.254.169.254/", "metadata"),
        ("https://localhost:6379/", "loopback"),
        ("https://[::1]:5432/", "loopback"),
        ("https://127.0.0.1/", "loopback"),
        ("https://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("https://0.0.0.0/", "unspecified"),
        ("https://10.1.2.3/", "private"),
        ("https://192.168.0.10/", "private"),
        ("https://172.16.5.4/", "private"),
        ("https://169.254.1.1/", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fd00:ec2::254]/", "metadata"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://224.0.0.1/", "multicast"),
        ("https://100.100.100.200/", "metadata"),
        ("https://metadata.google.internal/", "metadata"),
        ("https://user:pw@jira.example.com/", "credentials"),
        ("https:///nohost", "host"),
    ],
)
def test_unsafe_urls_are_refused_with_a_reason(url, reason):
    with pytest.raises(UnsafeUrl, match=reason):
        STRICT.check(url)


def test_a_public_https_url_is_allowed():
    STRICT.check("https://8.8.8.8/")
    STRICT.check("https://[2606:4700::1111]:8443/")


def test_an_unresolvable_name_is_allowed_at_save_and_refused_at_connect():
    url = "https://partner.invalid/"
    STRICT.check(url)  # checked again when connecting
    with pytest.raises(UnsafeUrl, match="resolve"):
        STRICT.check(url, require_resolution=True)


def test_plain_http_needs_the_setting():
    UrlPolicy.build(allow_http=True, allowed_hosts=()).check("http://8.8.8.8/")


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["127.0.0.1"], "https://127.0.0.1:8101/"),
        (["localhost"], "https://localhost:8101/"),
        (["LOCALHOST."], "https://localhost:8101/"),
        (["::1"], "https://[::1]:8101/"),
        (["[::1]"], "https://[::1]:8101/"),
        (["10.0.0.0/8"], "https://10.20.30.40/"),
        (["jira.corp.internal"], "https://jira.corp.internal/"),
        (["169.254.169.254"], "https://169.254.169.254/"),
    ],
)
def test_the_allow_list_names_hosts_addresses_and_networks(allowed, url):
    UrlPolicy.build(allow_http=False, allowed_hosts=allowed).check(url)


def test_a_network_on_the_allow_list_does_not_open_the_metadata_address():
    policy = UrlPolicy.build(allow_http=False, allowed_hosts=["169.254.0.0/16"])
    policy.check("https://169.254.1.1/")
    with pytest.raises(UnsafeUrl, match="metadata"):
        policy.check("https://169.254.169.254/")


def test_every_address_a_name_resolves_to_must_be_allowed(monkeypatch):
    import socket

    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "jira.partner.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(UnsafeUrl, match=r"private address 10\.0\.0\.5"):
        STRICT.check("https://jira.partner.example/")


def test_the_message_names_the_origin_never_the_path_or_query():
    with pytest.raises(UnsafeUrl) as caught:
        STRICT.check("https://127.0.0.1:6379/x?token=s3cr3t")
    assert "s3cr3t" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
