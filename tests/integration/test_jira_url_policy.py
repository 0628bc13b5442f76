"""SSRF at the organization boundary (issue 11, item 3): the partner Jira URL and the sites we
connect to. Bad URLs are refused when saved (API and admin: 400 / a field error) and again when
connecting, over real HTTP, since a host name may resolve elsewhere after it was saved."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.urls import reverse

from jiraapi.client import JiraClient, JiraSite
from jiraapi.errors import JiraRedirectRefused, JiraUnsafeUrl
from jiraapi.urlpolicy import UrlPolicy
from organizations import services
from organizations.models import Organization
from sync.sites import local_client, remote_client
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

URL = "/api/organizations/"
BAD_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/",
    "https://localhost:6379/",
    "https://[::1]:5432/",
    "ftp://jira.example.com/",
    "http://jira.example.com/",  # plain http without JIRA_ALLOW_HTTP
    "https://10.0.0.8/",
    "https://0.0.0.0:8080/",
]


@pytest.fixture
def strict(settings):
    """The product default: https only, no allow-list."""
    settings.JIRA_ALLOW_HTTP = False
    settings.JIRA_ALLOWED_HOSTS = []
    return settings


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with `server.answer` (status, headers) and records it."""

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.command, self.path, self.rfile.read(length)))
        status, headers = self.server.answer(self)
        body = b'{"id": "10001", "key": "REM-1", "fields": {}}' if status == 200 else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    servers = []

    def start(answer=lambda handler: (200, {})) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.seen, server.answer = [], answer
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_dns(monkeypatch):
    """`jira.partner.test` resolves to whatever the test says, for us and for urllib3."""
    real = socket.getaddrinfo
    answer = {"address": "93.184.216.34"}

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "jira.partner.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["address"], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answer


# --- refused when saved ---------------------------------------------------------------------


@pytest.mark.parametrize("bad_url", BAD_URLS)
def test_the_api_refuses_an_unsafe_partner_url_naming_the_field(api, strict, bad_url):
    response = api.post(URL, {"name": "X", "remoteBaseUrl": bad_url}, format="json")
    assert response.status_code == 400, response.content
    assert "remoteBaseUrl" in response.json()
    assert Organization.objects.count() == 0


@pytest.mark.parametrize("bad_url", BAD_URLS)
def test_a_patch_to_an_unsafe_url_is_refused_and_keeps_the_stored_url(
    api, strict, make_org, bad_url
):
    make_org(public_id="org-1", remote_base_url="https://8.8.8.8")
    response = api.patch(f"{URL}org-1/", {"remoteBaseUrl": bad_url}, format="json")
    assert response.status_code == 400, response.content
    assert "remoteBaseUrl" in response.json()
    assert Organization.objects.get().remote_base_url == "https://8.8.8.8"


def test_a_private_name_is_refused_when_saved(api, strict, fake_dns):
    fake_dns["address"] = "10.1.2.3"
    response = api.post(
        URL, {"name": "X", "remoteBaseUrl": "https://jira.partner.test/"}, format="json"
    )
    assert response.status_code == 400
    assert "10.1.2.3" in str(response.json()["remoteBaseUrl"])


@pytest.mark.parametrize("bad_url", ["https://169.254.169.254/", "ftp://jira.example.com/"])
def test_the_admin_form_shows_a_field_error_for_an_unsafe_url(
    client, superuser, strict, make_org, bad_url
):
    org = make_org(remote_base_url="https://8.8.8.8")
    client.force_login(superuser)
    response = client.post(
        reverse("admin:organizations_organization_change", args=[org.pk]),
        {
            "name": org.name,
            "enabled": "on",
            "remote_base_url": bad_url,
            "remote_flavor": "cloud",
            "remote_user": "",
            "remote_token": "",
            "sync_direction": "push",
            "remote_handshake_token": "",
            "conflict_policy": "later_wins",
            "remote_delete_policy": "comment",
            "remote_delete_status": "",
            "project_mappings-TOTAL_FORMS": "0",
            "project_mappings-INITIAL_FORMS": "0",
            "field_mappings-TOTAL_FORMS": "0",
            "field_mappings-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, not a redirect or a 500
    errors = response.context["adminform"].form.errors
    assert "remote_base_url" in errors, errors
    assert Organization.objects.get().remote_base_url == "https://8.8.8.8"


def test_the_allow_list_and_the_http_setting_open_local_sites(api, settings):
    settings.JIRA_ALLOW_HTTP = True
    settings.JIRA_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    response = api.post(URL, {"name": "X", "remoteBaseUrl": "http://127.0.0.1:8102"}, format="json")
    assert response.status_code == 201, response.content


def test_an_unsafe_local_jira_url_is_a_startup_error(strict):
    strict.LOCAL_JIRA_URL = "http://169.254.169.254"
    errors = [e for e in checks.run_checks() if e.id == "organizations.E001"]
    assert errors and "LOCAL_JIRA_URL" in errors[0].msg
    strict.LOCAL_JIRA_URL = "https://8.8.8.8"
    assert not [e for e in checks.run_checks() if e.id == "organizations.E001"]


# --- refused when connecting (real HTTP) ----------------------------------------------------


def test_a_redirect_to_another_port_is_refused_over_real_http(http_server, make_org, settings):
    settings.JIRA_ALLOW_HTTP, settings.JIRA_ALLOWED_HOSTS = True, ["127.0.0.1"]
    internal = http_server()  # e.g. an internal service on another port
    partner = http_server(
        lambda handler: (307, {"Location": f"http://127.0.0.1:{internal.server_port}/steal"})
    )
    org = make_org(
        remote_base_url=f"http://127.0.0.1:{partner.server_port}",
        remote_user="bot",
        remote_token="partner-token",
    )
    with pytest.raises(JiraRedirectRefused, match=f"127.0.0.1:{internal.server_port}"):
        remote_client(org).create_issue({"summary": "confidential"})
    assert [m for m, _, _ in partner.seen] == ["POST"]
    assert internal.seen == []  # neither the body nor the credentials went there


def test_a_same_origin_redirect_is_followed_over_real_http(http_server, make_org, settings):
    settings.JIRA_ALLOW_HTTP, settings.JIRA_ALLOWED_HOSTS = True, ["127.0.0.1"]
    partner = http_server(
        lambda h: (302, {"Location": "/rest/api/3/issue/10001"}) if "REM-1" in h.path else (200, {})
    )
    org = make_org(remote_base_url=f"http://127.0.0.1:{partner.server_port}")
    assert remote_client(org).get_issue("REM-1")["key"] == "REM-1"
    assert [p for _, p, _ in partner.seen] == ["/rest/api/3/issue/REM-1", "/rest/api/3/issue/10001"]


def test_a_name_accepted_on_save_is_refused_when_it_resolves_to_loopback_later(
    http_server, make_org, settings, fake_dns
):
    settings.JIRA_ALLOW_HTTP, settings.JIRA_ALLOWED_HOSTS = True, []
    internal = http_server()
    fake_dns["address"] = "93.184.216.34"  # public when saved
    org = make_org(
        remote_base_url=f"http://jira.partner.test:{internal.server_port}",
        remote_token="partner-token",
    )
    fake_dns["address"] = "127.0.0.1"  # DNS changed since
    with pytest.raises(JiraUnsafeUrl, match="loopback address 127.0.0.1"):
        remote_client(org).get_issue("REM-1")
    assert internal.seen == []


def test_a_rebinding_inside_the_check_cache_is_caught_on_the_connection(http_server, fake_dns):
    internal = http_server()
    url = f"http://jira.partner.test:{internal.server_port}"
    client = JiraClient(
        JiraSite(url, "cloud", "bot", "tok"),
        url_policy=UrlPolicy.build(allow_http=True, allowed_hosts=()),
    )
    client.session.get_adapter(url).check(url)  # looked up while public: remembered
    fake_dns["address"] = "127.0.0.1"  # then the name is rebound
    with pytest.raises(JiraUnsafeUrl, match="loopback"):
        client.get_issue("REM-1")
    assert internal.seen == []


def test_an_unsafe_local_jira_url_is_refused_when_connecting(http_server, strict):
    internal = http_server()
    strict.LOCAL_JIRA_URL = f"http://127.0.0.1:{internal.server_port}"
    with pytest.raises(JiraUnsafeUrl):
        local_client().get_issue("LOC-1")
    assert internal.seen == []


def test_organizations_saved_before_the_policy_are_refused_when_connecting(strict, make_org):
    org = make_org(remote_base_url="https://8.8.8.8")
    Organization.objects.filter(pk=org.pk).update(remote_base_url="http://169.254.169.254")
    org.refresh_from_db()
    with pytest.raises(JiraUnsafeUrl):
        remote_client(org).get_issue("REM-1")
    assert services  # the services are the only writers in the tests above


def test_a_push_to_a_partner_whose_address_is_refused_now_is_dead_with_a_clear_error(
    world, settings
):
    """Two simulators over real HTTP: the partner site was accepted when saved; now its address
    is no longer allowed (DNS or policy changed). The delivery ends `dead`, naming the reason,
    and nothing reaches the partner."""
    local = world.sims["local"]
    settings.LOCAL_JIRA_URL = local.base_url.replace("127.0.0.1", "localhost")
    settings.JIRA_ALLOWED_HOSTS = ["localhost"]  # the partner's 127.0.0.1 is not allowed now
    world.edit("local", summary="Do not leak me")
    statuses = world.feed_all("local")
    assert statuses == ["dead"]
    delivery = WebhookDelivery.objects.order_by("-pk").first()
    assert "refused to connect" in delivery.last_error
    assert "loopback address 127.0.0.1" in delivery.last_error
    assert world.calls("partner") == 0
    assert world.fields("partner")["summary"] == "A"


def test_a_button_on_an_organization_saved_before_the_policy_explains_instead_of_500(
    client, superuser, strict, make_org
):
    org = make_org(remote_base_url="https://8.8.8.8")
    Organization.objects.filter(pk=org.pk).update(remote_base_url="http://169.254.169.254")
    client.force_login(superuser)
    response = client.post(
        reverse("admin:organizations_organization_two_way_on", args=[org.pk]), follow=True
    )
    assert response.status_code == 200
    assert "use https://" in " ".join(m.message for m in response.context["messages"])
    org.refresh_from_db()
    assert org.sync_direction == "push"


def test_a_bulk_action_on_an_organization_saved_before_the_policy_explains_instead_of_500(
    client, superuser, strict, make_org
):
    bad = make_org(name="Old", remote_base_url="https://8.8.8.8")
    good = make_org(name="Good", remote_base_url="https://8.8.4.4")
    Organization.objects.filter(pk=bad.pk).update(remote_base_url="https://127.0.0.1")
    client.force_login(superuser)
    response = client.post(
        reverse("admin:organizations_organization_changelist"),
        {"action": "enable_two_way_action", "_selected_action": [bad.pk, good.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = " ".join(m.message for m in response.context["messages"])
    assert "Old" in shown and "loopback" in shown
    assert Organization.objects.get(pk=good.pk).sync_direction == "bidirectional"
    assert Organization.objects.get(pk=bad.pk).sync_direction == "push"


def test_an_organization_saved_before_the_policy_can_still_be_switched_off(
    client, superuser, strict, make_org
):
    org = make_org(remote_base_url="https://8.8.8.8", sync_direction="bidirectional")
    Organization.objects.filter(pk=org.pk).update(remote_base_url="http://169.254.169.254")
    client.force_login(superuser)
    client.post(reverse("admin:organizations_organization_two_way_off", args=[org.pk]))
    org.refresh_from_db()
    assert org.sync_direction == "push"
    services.organization_update(organization=org, data={"enabled": False})
    org.refresh_from_db()
    assert org.enabled is False
    with pytest.raises(ValidationError):
        services.organization_update(organization=org, data={"enabled": True})
