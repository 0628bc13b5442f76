"""`make run` on a fresh machine: SQLite, the filesystem broker, web + worker + beat."""

import json
import re
import time

import pytest
import requests

from devtools.supervisor import Process, free_port, wait_http

from .helpers import csrf_token, embedded_env

pytestmark = pytest.mark.system


def test_make_run_serves_the_admin_flow_on_the_embedded_default(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service = Process(
        "make run", ["make", "--no-print-directory", "run"], env=embedded_env(tmp_path, port)
    )
    try:
        login = service.wait_for(r"as '(\w+)' with password '([^']+)'", timeout=120)
        username, password = login.group(1), login.group(2)
        service.wait_for(r"worker@\S+ ready", timeout=60)
        service.wait_for(r"beat: Starting", timeout=60)

        health = wait_http(f"{base}/healthz")
        assert health.status_code == 200
        assert health.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert (tmp_path / "db.sqlite3").exists()

        web = requests.Session()
        page = web.get(f"{base}/admin/login/", timeout=10)
        response = web.post(
            f"{base}/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": csrf_token(page.text),
                "next": "/admin/",
            },
            headers={"Referer": f"{base}/admin/login/"},
            timeout=10,
        )
        assert "Site administration" in response.text

        add_url = f"{base}/admin/organizations/organization/add/"
        form = web.get(add_url, timeout=10).text
        response = web.post(
            add_url,
            data={
                "csrfmiddlewaretoken": csrf_token(form),
                "public_id": "org-run",
                "name": "Run Partner",
                "enabled": "on",
                "remote_base_url": "https://partner.atlassian.net",
                "remote_flavor": "cloud",
                "remote_user": "",
                "remote_token": "",
                "sync_direction": "push",
                "remote_handshake_token": "",
                "conflict_policy": "later_wins",
                "remote_delete_policy": "comment",
                "local_delete_policy": "comment",
                "target_gone_policy": "unlink",
                "remote_delete_status": "",
                "project_mappings-TOTAL_FORMS": "1",
                "project_mappings-INITIAL_FORMS": "0",
                "project_mappings-0-local_project_key": "LOC",
                "project_mappings-0-remote_project_key": "REMOTE_PROJ",
                "project_mappings-0-issue_type_map": "{}",
                "project_mappings-0-push_jql": "",
                "field_mappings-TOTAL_FORMS": "0",
                "field_mappings-INITIAL_FORMS": "0",
                "_continue": "1",
            },
            headers={"Referer": add_url},
            timeout=10,
        )
        change_url = response.url
        assert re.search(r"/organization/\d+/change/$", change_url), response.text[:2000]
        assert 'id="partner-setup"' not in response.text

        pk = re.search(r"/organization/(\d+)/change/", change_url).group(1)
        response = web.post(
            f"{base}/admin/organizations/organization/{pk}/two-way-on/",
            data={"csrfmiddlewaretoken": csrf_token(response.text)},
            headers={"Referer": change_url},
            timeout=10,
        )
        assert 'id="partner-setup"' in response.text
        url = re.search(r'id="incoming-webhook-url"[^>]*value="([^"]+)"', response.text).group(1)
        assert url.startswith(f"{base}/webhooks/incoming/org-run/?secret=")
        assert "project = &quot;REMOTE_PROJ&quot;" in response.text

        delivery = requests.post(
            url.replace("&amp;", "&"),
            data=json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"id": "1"}}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert delivery.status_code == 202
        page = web.get(change_url, timeout=10).text
        assert 'data-status="active"' in page
        secret = url.split("secret=", 1)[1]
        assert "/webhooks/incoming/org-run/" in service.output  # the access log saw it ...
        assert secret not in service.output  # ... without the secret
    finally:
        code = service.interrupt()
    time.sleep(0.5)
    assert not service.group_alive(), "a process of `make run` outlived Ctrl-C"
    assert code is not None
