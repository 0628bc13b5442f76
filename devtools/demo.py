"""`make demo`: the whole product on one machine, with nothing but Python.

Starts two simulated Jira sites (local: Cloud; partner: Data Center), the service on its
embedded default (SQLite and the filesystem broker) with a web server, a worker and beat;
creates an admin user and a two-way organization; registers both webhooks as the two Jira
admins would; runs a short guided scenario, printing each step as it syncs; then keeps
running until Ctrl-C and stops every process it started.

Ports: DEMO_PORT (8000), DEMO_LOCAL_JIRA_PORT (8101), DEMO_PARTNER_JIRA_PORT (8102).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from devtools.jira_admin import register_webhook
from devtools.processes import beat_command, jirasim_command, worker_command
from devtools.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOCAL_SYNC = ("sync@local.example", "local-token")
PARTNER_SYNC = ("sync@partner.example", "partner-token")
ALICE = ("alice@example.com", "alice-token")
ADMIN_PASSWORD = "demo-admin-password"  # noqa: S105 - a throwaway demo site on localhost


def say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    def __init__(self) -> None:
        self.port = int(os.environ.get("DEMO_PORT", "8000"))
        self.local_port = int(os.environ.get("DEMO_LOCAL_JIRA_PORT", "8101"))
        self.partner_port = int(os.environ.get("DEMO_PARTNER_JIRA_PORT", "8102"))
        self.base = f"http://127.0.0.1:{self.port}"
        self.local = f"http://127.0.0.1:{self.local_port}"
        self.partner = f"http://127.0.0.1:{self.partner_port}"
        self.var = Path(os.environ.get("DEMO_VAR_DIR", REPO / "var" / "demo"))
        self.processes = Supervisor(logs=self.var, report=say)
        self.stopping = False

    # --- processes ---------------------------------------------------------------------------

    def stop(self, *_args) -> None:
        """Stop every process started so far; safe to call again (and from a signal)."""
        if not self.stopping:
            self.stopping = True
            say("\nStopping ...")
        # The last started first: the Jira sites (they send webhooks), the web server, beat,
        # the worker. The main processes only: a Celery worker stops its own pool.
        if self.processes.stop(15, group=False):
            say("Stopped every process the demo started.")

    # --- set-up ------------------------------------------------------------------------------

    def start(self) -> None:
        shutil.rmtree(self.var, ignore_errors=True)
        self.var.mkdir(parents=True)
        sim_env = os.environ.copy()
        local_secret = secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "VAR_DIR": str(self.var),
            "DEBUG": "true",
            "PUBLIC_BASE_URL": self.base,
            "LOCAL_JIRA_URL": self.local,
            "LOCAL_JIRA_FLAVOR": "cloud",
            "LOCAL_JIRA_USER": LOCAL_SYNC[0],
            "LOCAL_JIRA_TOKEN": LOCAL_SYNC[1],
            "LOCAL_WEBHOOK_SECRET": local_secret,
            "JIRA_ALLOW_HTTP": "true",  # both simulated sites: plain http on 127.0.0.1
            "JIRA_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SYNC_SWEEP_SECONDS": "5",
            "PYTHONUNBUFFERED": "1",
        }
        for key in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"):
            env.pop(key, None)
        os.environ.update(env)
        for key in ("DATABASE_URL", "CELERY_BROKER_URL"):
            os.environ.pop(key, None)
        subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True
        )
        subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "ensure_admin"],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Started in the reverse of the order they stop in (see `stop`).
        worker = self.processes.start("worker", worker_command(concurrency=2), env=env)
        self.processes.start(
            "beat", beat_command(schedule=str(self.var / "beat-schedule")), env=env
        )
        self.processes.start(
            "web",
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            env=env,
        )
        for name, port, flavor, project, user in (
            ("jira-partner", self.partner_port, "datacenter", "REM:Partner project", PARTNER_SYNC),
            ("jira-local", self.local_port, "cloud", "LOC:Our product", LOCAL_SYNC),
        ):
            command = jirasim_command(
                port=port, flavor=flavor, project=project, users=[user, ALICE], retry_base=0.5
            )
            self.processes.start(name, command, env=sim_env)
        for url in (
            f"{self.local}/_sim/health",
            f"{self.partner}/_sim/health",
            f"{self.base}/healthz",
        ):
            self.processes.wait_http(url)
        worker.wait_for(" ready.")
        self.set_up(local_secret)

    def set_up(self, local_secret: str) -> None:
        """The two-way organization, and both webhooks as the two Jira admins would."""
        import django

        os.environ["DJANGO_SETTINGS_MODULE"] = "syncapp.settings"
        os.environ["LOG_LEVEL"] = "WARNING"  # this process prints the story, not log lines
        django.setup()
        from organizations import services

        self.org = services.organization_create(
            name="Partner Co",
            public_id="org-partner",
            remote_base_url=self.partner,
            remote_flavor="datacenter",
            remote_user=PARTNER_SYNC[0],
            remote_token=PARTNER_SYNC[1],
        )
        services.project_mapping_create(
            organization=self.org, local_project_key="LOC", remote_project_key="REM"
        )
        self.org = services.organization_enable_two_way(organization=self.org)
        # Our Jira admin's webhook, and the partner admin's, as the admin page tells them.
        register_webhook(
            self.local,
            LOCAL_SYNC,
            f"{self.base}/webhooks/local/?secret={local_secret}",
            'project = "LOC"',
        )
        register_webhook(
            self.partner,
            PARTNER_SYNC,
            f"{self.org.incoming_webhook_url}?secret={self.org.incoming_secret}",
            'project = "REM"',
        )

    # --- the guided scenario -------------------------------------------------------------------

    def api(self, site: str, method: str, path: str, **kwargs):
        version = "3" if site == self.local else "2"
        response = requests.request(
            method, f"{site}/rest/api/{version}{path}", auth=ALICE, timeout=10, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def until(self, check, timeout: float = 30) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout and not self.stopping:
            try:
                if check():
                    return time.monotonic() - started
            except (requests.RequestException, KeyError, IndexError, TypeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("stopping" if self.stopping else "the change did not sync in time")

    def scenario(self) -> None:
        say("Guided scenario (Alice works on both sites; watch the changes cross):")
        local_key, remote_key = self.step_create()
        self.step_partner_edit(local_key, remote_key)
        self.step_partner_comment(local_key, remote_key)
        self.step_transition(local_key, remote_key)
        time.sleep(1.5)  # let the echoes come back
        from webhooks.models import WebhookDelivery

        echoes = WebhookDelivery.objects.filter(status="echo").count()
        say(f"  Our own writes came back as {echoes} webhooks: recognised as echoes, 0 Jira calls.")

    def step_create(self) -> tuple[str, str]:
        bold = {"type": "text", "text": "on fire", "marks": [{"type": "strong"}]}
        paragraph = [{"type": "text", "text": "The printer in room 4 is "}, bold]
        doc = {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": paragraph}],
        }
        fields = {
            "project": {"key": "LOC"},
            "issuetype": {"name": "Bug"},
            "summary": "Printer on fire",
            "description": doc,
            "priority": {"name": "High"},
        }
        local_key = self.api(self.local, "POST", "/issue", json={"fields": fields})["key"]
        remote = {}

        def created():
            found = self.api(self.partner, "GET", "/search", params={"jql": "project = REM"})
            remote["key"] = found["issues"][0]["key"]
            return True

        took = self.until(created)
        fields = self.api(self.partner, "GET", f"/issue/{remote['key']}")["fields"]
        say(
            f"  1. Created {local_key} locally          -> partner {remote['key']} in {took:.2f} s"
            f" (description as wiki: {fields['description']!r})"
        )
        return local_key, remote["key"]

    def step_partner_edit(self, local_key: str, remote_key: str) -> None:
        summary = "Printer on fire (partner: extinguisher sent)"
        self.api(self.partner, "PUT", f"/issue/{remote_key}", json={"fields": {"summary": summary}})
        took = self.until(
            lambda: (
                self.api(self.local, "GET", f"/issue/{local_key}")["fields"]["summary"] == summary
            )
        )
        say(f"  2. Edited the summary at the partner -> {local_key} updated in {took:.2f} s")

    def step_partner_comment(self, local_key: str, remote_key: str) -> None:
        body = {"body": "Technician arrives at *10:00*."}
        self.api(self.partner, "POST", f"/issue/{remote_key}/comment", json=body)
        took = self.until(
            lambda: self.api(self.local, "GET", f"/issue/{local_key}/comment")["total"] > 0
        )
        say(f"  3. Commented at the partner           -> comment on {local_key} in {took:.2f} s")

    def step_transition(self, local_key: str, remote_key: str) -> None:
        transitions = self.api(self.local, "GET", f"/issue/{local_key}/transitions")["transitions"]
        target = next(t for t in transitions if t["to"]["name"] == "In Progress")
        move = {"transition": {"id": target["id"]}}
        self.api(self.local, "POST", f"/issue/{local_key}/transitions", json=move)
        took = self.until(
            lambda: (
                self.api(self.partner, "GET", f"/issue/{remote_key}")["fields"]["status"]["name"]
                == "In Progress"
            )
        )
        say(f"  4. Moved {local_key} to In Progress      -> partner status in {took:.2f} s")

    def banner(self) -> None:
        say()
        say("Jira sync demo is running.")
        say(f"  Admin:          {self.base}/admin/   user 'admin', password '{ADMIN_PASSWORD}'")
        say(f"  Organization:   {self.base}/admin/organizations/organization/{self.org.pk}/change/")
        say(f"  Local Jira:     {self.local}/   (Cloud; issues at {self.local}/browse/LOC-1)")
        say(f"  Partner Jira:   {self.partner}/   (Data Center; {self.partner}/browse/REM-1)")
        say(f"  Logs:           {self.var}/")
        say("Press Ctrl-C to stop.")


def run(demo, starting: str) -> int:
    """Run a demo (`Demo` or `DemoB`) until Ctrl-C: start it, show where to look, play its
    guided steps; 1 when it failed to come up."""
    signal.signal(signal.SIGINT, demo.stop)
    signal.signal(signal.SIGTERM, demo.stop)
    try:
        say(starting)
        demo.start()
        demo.banner()
        demo.scenario()
        say("Demo ready. Press Ctrl-C to stop.")
        while not demo.stopping:
            time.sleep(0.5)
    except Exception as exc:
        if not demo.stopping:
            say(f"Demo failed: {exc}")
            demo.stop()
            return 1
    finally:
        demo.stop()
    return 0


def main() -> int:
    return run(Demo(), "Starting two Jira simulators, the web server, a worker and beat ...")


if __name__ == "__main__":
    sys.exit(main())
