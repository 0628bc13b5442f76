"""`make demo` and `make demo-b` on the embedded default: the guided scenario syncs both ways,
Ctrl-C stops all."""

import re
import sqlite3
import subprocess
import time

import pytest

from devtools.supervisor import Process, free_port

from .helpers import embedded_env

pytestmark = pytest.mark.system


def test_make_demo_runs_the_scenario_and_stops_cleanly_on_ctrl_c(tmp_path):
    ports = [free_port() for _ in range(3)]
    env = embedded_env(tmp_path, ports[0])
    env.update(
        DEMO_PORT=str(ports[0]),
        DEMO_LOCAL_JIRA_PORT=str(ports[1]),
        DEMO_PARTNER_JIRA_PORT=str(ports[2]),
        DEMO_VAR_DIR=str(tmp_path / "demo"),
    )
    demo = Process("make demo", ["make", "--no-print-directory", "demo"], env=env)
    try:
        demo.wait_for(r"Demo ready\. Press Ctrl-C to stop\.", timeout=180)
    finally:
        code = demo.interrupt(timeout=60)
    output = demo.output
    assert f"http://127.0.0.1:{ports[0]}/admin/" in output
    assert "password 'demo-admin-password'" in output
    for step in (
        r"1\. Created LOC-1 locally\s+-> partner REM-1 in [\d.]+ s",
        r"2\. Edited the summary at the partner -> LOC-1 updated in [\d.]+ s",
        r"3\. Commented at the partner\s+-> comment on LOC-1 in [\d.]+ s",
        r"4\. Moved LOC-1 to In Progress\s+-> partner status in [\d.]+ s",
    ):
        assert re.search(step, output), output
    assert re.search(r"came back as [1-9]\d* webhooks: recognised as echoes, 0 Jira calls", output)
    assert "Stopped every process the demo started." in output
    assert code is not None
    time.sleep(1)
    assert not demo.group_alive()
    for port in ports:
        leftover = subprocess.run(  # noqa: S603
            ["pgrep", "-f", f"{port}"],
            capture_output=True,
            text=True,  # noqa: S607
        ).stdout.split()
        assert leftover == [], f"processes left behind on port {port}: {leftover}"
    leftover = subprocess.run(  # noqa: S603
        ["pgrep", "-f", str(tmp_path / "demo")],
        capture_output=True,
        text=True,  # noqa: S607
    ).stdout.split()
    assert leftover == []


def _leftovers(*patterns: str) -> list[str]:
    found = []
    for pattern in patterns:
        found += subprocess.run(  # noqa: S603
            ["pgrep", "-f", pattern],  # noqa: S607
            capture_output=True,
            text=True,
        ).stdout.split()
    return found


def test_make_demo_b_connects_two_installs_and_changes_cross_between_them(tmp_path):
    """Scenario B: two installs, each with its own database, worker and Jira, connected by
    invitation; the guided changes cross between them; Ctrl-C stops all."""
    ports = [free_port() for _ in range(4)]
    var = tmp_path / "demo-b"
    env = embedded_env(tmp_path, ports[0])
    env.update(
        DEMO_PORT=str(ports[0]),
        DEMO_PARTNER_PORT=str(ports[1]),
        DEMO_LOCAL_JIRA_PORT=str(ports[2]),
        DEMO_PARTNER_JIRA_PORT=str(ports[3]),
        DEMO_VAR_DIR=str(var),
    )
    demo = Process("make demo-b", ["make", "--no-print-directory", "demo-b"], env=env)
    try:
        demo.wait_for(r"Demo ready\. Press Ctrl-C to stop\.", timeout=240)
        # Each install has its own database; neither holds a Jira credential of the other.
        for name, other_token in (("acme", "globex-jira-token"), ("globex", "acme-jira-token")):
            with sqlite3.connect(var / name / "db.sqlite3") as db:
                rows = db.execute(
                    "SELECT connection_type, handshake_status, remote_token, remote_base_url "
                    "FROM organizations_organization"
                ).fetchall()
            assert rows == [("app", "active", "", "")], (name, rows)
            assert other_token.encode() not in (var / name / "db.sqlite3").read_bytes()
    finally:
        code = demo.interrupt(timeout=90)
    output = demo.output
    assert re.search(r"handshakeStatus active on both sides, [\d.]+ s after", output), output
    assert f"Acme's admin:    http://127.0.0.1:{ports[0]}/admin/" in output
    assert f"Globex's admin:  http://localhost:{ports[1]}/admin/" in output
    assert f"Acme's Jira:     http://127.0.0.1:{ports[2]}/" in output
    assert f"Globex's Jira:   http://127.0.0.1:{ports[3]}/" in output
    for step in (
        r"1\. Created LOC-1 locally\s+-> partner REM-1 in [\d.]+ s",
        r"2\. Edited the summary at the partner -> LOC-1 updated in [\d.]+ s",
        r"3\. Commented at the partner\s+-> comment on LOC-1 in [\d.]+ s",
        r"4\. Moved LOC-1 to In Progress\s+-> partner status in [\d.]+ s",
    ):
        assert re.search(step, output), output
    assert "Stopped every process the demo started." in output
    assert code is not None
    time.sleep(1)
    assert not demo.group_alive()
    assert _leftovers(*(f"127.0.0.1:{port}" for port in ports[:2]), str(var)) == []
    for port in ports[2:]:
        assert _leftovers(f"--port {port}") == []
