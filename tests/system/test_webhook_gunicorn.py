"""The webhook endpoints under gunicorn, as deployed (`-c syncapp/gunicorn.conf.py`): chunked
bodies, deep JSON, the access log, and the failed-authentication throttle shared by
separate web processes."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from devtools.supervisor import free_port, wait_http
from organizations import services as org_services
from webhooks.models import WebhookDelivery

from .conftest import database_url

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

LOCAL_SECRET = "gunicorn-local-secret-for-tests"
PYTHON = sys.executable


@pytest.fixture(scope="module")
def web_env(django_db_setup, django_db_blocker, tmp_path_factory) -> dict:
    with django_db_blocker.unblock():
        db_url = database_url()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        # This run's own throttle counters (the Redis database outlives test runs).
        CACHE_KEY_PREFIX=f"gunicorn-test-{uuid.uuid4().hex}",
        VAR_DIR=str(tmp_path_factory.mktemp("gunicorn")),
        LOCAL_WEBHOOK_SECRET=LOCAL_SECRET,
        WEBHOOK_AUTH_FAILURE_LIMIT="3",
        WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS="600",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_gunicorn(processes, env: dict, name: str) -> tuple[str, object]:
    port = free_port()
    command = [
        PYTHON, "-m", "gunicorn", "-c", "syncapp/gunicorn.conf.py", "syncapp.wsgi",
        "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "2", "--access-logfile", "-",
    ]  # fmt: skip
    log = Path(env["VAR_DIR"]) / f"{name}-{port}.log"
    process = processes.start(name, command, env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    # Only this process: others of the session's supervisor may have exited on purpose.
    wait_http(f"{base}/healthz", processes=[process])
    return base, process


@pytest.fixture(scope="module")
def gunicorn(processes, web_env):
    base, process = start_gunicorn(processes, web_env, "gunicorn-a")
    yield base, process
    process.terminate(15)  # before the test database is dropped


@pytest.fixture(scope="module")
def gunicorn_b(processes, web_env):
    base, process = start_gunicorn(processes, web_env, "gunicorn-b")
    yield base, process
    process.terminate(15)


@pytest.fixture
def org():
    org = org_services.organization_create(
        name="Partner",
        public_id=f"org-{uuid.uuid4().hex[:12]}",
        sync_direction="bidirectional",
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    return org


def body(key: str = "REM-1") -> bytes:
    return json.dumps(
        {
            "timestamp": 1700000000000,
            "webhookEvent": "jira:issue_updated",
            "issue": {"id": "10001", "key": key, "fields": {"project": {"key": "REM"}}},
        }
    ).encode()


def send_chunked(base: str, path: str, data: bytes) -> tuple[int, bytes]:
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(data), 64):
            piece = data[start : start + 64]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_chunked_delivery_is_stored_under_gunicorn(gunicorn, org):
    base, _ = gunicorn
    data = body("REM-7")
    incoming = f"/webhooks/incoming/{org.public_id}/?secret={org.incoming_secret}"
    status, text = send_chunked(base, incoming, data)
    assert status == 202, text
    status, text = send_chunked(base, f"/webhooks/local/?secret={LOCAL_SECRET}", data)
    assert status == 202, text
    stored = WebhookDelivery.objects.values_list("source", "body")
    assert sorted(s for s, _ in stored) == ["local", "partner"]
    assert all(b.encode() == data for _, b in stored)


def test_deep_json_is_a_400_under_gunicorn_and_unauthenticated_a_401(gunicorn, org):
    base, process = gunicorn
    deep = b"[" * 100_000
    incoming = f"{base}/webhooks/incoming/{org.public_id}/"
    headers = {"Content-Type": "application/json"}
    for url, secret in ((incoming, org.incoming_secret), (f"{base}/webhooks/local/", LOCAL_SECRET)):
        answer = requests.post(
            url, params={"secret": secret}, data=deep, headers=headers, timeout=30
        )
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_json"
    answer = requests.post(
        incoming, params={"secret": "nope"}, data=deep, headers=headers, timeout=30
    )
    assert answer.status_code == 401
    assert WebhookDelivery.objects.count() == 0
    assert "Traceback" not in process.output


def test_the_access_log_blanks_the_secret(gunicorn, org):
    base, process = gunicorn
    answer = requests.post(
        f"{base}/webhooks/incoming/{org.public_id}/",
        params={"secret": org.incoming_secret, "x": "1"},
        data=body("REM-8"),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 202
    requests.post(f"{base}/webhooks/local/?secret=also-not-shown", data=b"{}", timeout=30)
    # Both requests are answered; their access log lines follow within moments.
    deadline = time.monotonic() + 10
    while process.output.count("secret=[redacted]") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    log = process.output
    assert f"/webhooks/incoming/{org.public_id}/?secret=[redacted]&x=1" in log
    assert org.incoming_secret not in log
    assert "also-not-shown" not in log


def test_failed_authentications_are_throttled_across_web_processes(gunicorn, gunicorn_b, org):
    (base_a, _), (base_b, _) = gunicorn, gunicorn_b
    path = f"/webhooks/incoming/{org.public_id}/"
    headers = {"Content-Type": "application/json"}
    for _ in range(3):
        answer = requests.post(
            base_a + path, params={"secret": "guess"}, data=body(), headers=headers, timeout=30
        )
        assert answer.status_code == 401
    # Another server (another set of processes): the same counter.
    answer = requests.post(
        base_b + path, params={"secret": org.incoming_secret}, data=body(), headers=headers,
        timeout=30,
    )  # fmt: skip
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    # Another organization, same address: not throttled.
    other = org_services.organization_create(
        name="Other", public_id=f"org-{uuid.uuid4().hex[:12]}", sync_direction="bidirectional"
    )
    answer = requests.post(
        f"{base_b}/webhooks/incoming/{other.public_id}/",
        params={"secret": other.incoming_secret}, data=body(), headers=headers, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 200  # stored as ignored: REM is not mapped for it
    assert WebhookDelivery.objects.filter(organization=org).count() == 0


def test_a_client_blocked_through_one_server_gets_429_from_the_others_kept_credentials(
    gunicorn, gunicorn_b, org
):
    """Both servers keep the organization's credentials (accepted deliveries); the client
    fails on one server until blocked: the other server's kept credentials do not let its
    right secret through, and another organization from the same address is not blocked."""
    bases = [gunicorn[0], gunicorn_b[0]]
    session = requests.Session()
    path = f"/webhooks/incoming/{org.public_id}/"

    def post(base: str, secret: str, n: str) -> requests.Response:
        headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": n}
        return session.post(
            base + path, params={"secret": secret}, data=body(), headers=headers, timeout=30
        )

    for i in range(8):  # enough to reach every process of both servers
        assert post(bases[i % 2], org.incoming_secret, f"warm-{i}").status_code == 202
    for i in range(3):
        assert post(bases[0], "guess", f"guess-{i}").status_code == 401
    wrong = post(bases[1], "guess", "guess-b")
    for i in range(4):  # every process of the other server
        right = post(bases[1], org.incoming_secret, f"right-{i}")
        assert right.status_code == wrong.status_code == 429
        assert right.content == wrong.content
    assert WebhookDelivery.objects.filter(organization=org).count() == 8


def test_a_rotated_secret_or_a_disabled_organization_applies_in_every_web_process(
    gunicorn, gunicorn_b, org
):
    """Each of two servers (four web processes) accepts deliveries, then the secret is
    rotated out (no grace period) in this process: the very next delivery to either server
    is refused; then with the new secret it is accepted, until the organization is disabled."""
    bases = [gunicorn[0], gunicorn_b[0]]
    session = requests.Session()

    def post(base: str, secret: str, n: str) -> int:
        url = f"{base}/webhooks/incoming/{org.public_id}/?secret={secret}"
        headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": n}
        return session.post(url, data=body(), headers=headers, timeout=30).status_code

    old = org.incoming_secret
    for i in range(8):  # enough to reach every process of both servers
        assert post(bases[i % 2], old, f"warm-{i}") == 202
    rotated = org_services.organization_rotate_secret(organization=org, grace_period=timedelta(0))
    assert [post(base, old, f"old-{base}") for base in bases] == [401, 401]
    assert post(bases[0], rotated.incoming_secret, "new-a") == 202
    assert post(bases[1], rotated.incoming_secret, "new-b") == 202
    org_services.organization_update(organization=rotated, data={"enabled": False})
    new = rotated.incoming_secret
    assert [post(base, new, f"off-{base}") for base in bases] == [403, 403]
    assert WebhookDelivery.objects.filter(organization=org).count() == 10
