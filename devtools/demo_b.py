"""`make demo-b`: Scenario B on one machine: two installs of the service, connected by
invitation, each writing only into its own Jira.

Starts two complete installs, each on the embedded default (its own SQLite database, its own
filesystem broker, a web server, a worker and beat): Acme's, whose Jira is a simulated Cloud
site (project LOC), and Globex's, whose Jira is a simulated Data Center site (project REM).
Each Jira's admin registers a webhook to their own install only. Then, through the two
installs' APIs, Acme's admin creates a connection invitation and Globex's admin accepts it,
mapping REM to LOC, two-way; both become active. Neither install is given the other's Jira
credentials. A short scenario shows changes crossing both ways (each install's outbox and
relay, the other's inbox and engine); then it keeps running until Ctrl-C and stops every
process it started.

Ports: DEMO_PORT (8000, Acme's install), DEMO_PARTNER_PORT (8001, Globex's install),
DEMO_LOCAL_JIRA_PORT (8101, Acme's Jira), DEMO_PARTNER_JIRA_PORT (8102, Globex's Jira).
Acme's install is at 127.0.0.1 and Globex's at localhost: two host names, so one browser
keeps both admin logins (cookies do not tell ports apart).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import requests

from devtools.demo import ADMIN_PASSWORD, ALICE, REPO, Demo, run, say
from devtools.installs import Install, install_start
from devtools.jira_admin import register_webhook
from devtools.processes import jirasim_command

ACME_SYNC = ("sync@acme.example", "acme-jira-token")
GLOBEX_SYNC = ("sync@globex.example", "globex-jira-token")
ADMIN = ("admin", ADMIN_PASSWORD)


class DemoB(Demo):
    """Two installs instead of one; the guided steps are the one-install demo's, with each
    change crossing from one install to the other."""

    def __init__(self) -> None:
        super().__init__()
        self.partner_web_port = int(os.environ.get("DEMO_PARTNER_PORT", "8001"))
        self.var = Path(os.environ.get("DEMO_VAR_DIR", REPO / "var" / "demo-b"))
        self.processes.logs = self.var
        self.installs: dict[str, Install] = {}

    def install_env(self, name: str, jira_url: str, flavor: str, user: tuple[str, str]) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "DATABASE_URL",
                "CELERY_BROKER_URL",
                "CACHE_URL",
                "DJANGO_SETTINGS_MODULE",
                "PUBLIC_BASE_URL",
                "FIELD_ENCRYPTION_KEYS",
            )
        }
        env.update(
            VAR_DIR=str(self.var / name),  # its own SQLite database, broker and cache
            DEBUG="true",
            FIELD_ENCRYPTION_KEYS=secrets.token_urlsafe(32),
            LOCAL_JIRA_URL=jira_url,
            LOCAL_JIRA_FLAVOR=flavor,
            LOCAL_JIRA_USER=user[0],
            LOCAL_JIRA_TOKEN=user[1],
            LOCAL_WEBHOOK_SECRET=secrets.token_urlsafe(24),
            JIRA_ALLOW_HTTP="true",  # the simulators and the other install: http on this host
            JIRA_ALLOWED_HOSTS="127.0.0.1,localhost",
            SYNC_SWEEP_SECONDS="5",
        )
        return env

    def start(self) -> None:
        shutil.rmtree(self.var, ignore_errors=True)
        self.var.mkdir(parents=True)
        # Started in the reverse of the order they stop in: the Jira sites first (they send
        # webhooks), then each install's web server and worker.
        for name, port, host, jira, flavor, user in (
            ("acme", self.port, "127.0.0.1", self.local, "cloud", ACME_SYNC),
            ("globex", self.partner_web_port, "localhost", self.partner, "datacenter", GLOBEX_SYNC),
        ):
            env = self.install_env(name, jira, flavor, user)
            say(f"  {name}: migrating its own database, starting its web server and worker ...")
            self.installs[name] = install_start(
                self.processes,
                name=name,
                port=port,
                host=host,
                env=env,
                admin=ADMIN,
                logs=self.var / name,
            )
        for name, port, flavor, project, user in (
            ("jira-globex", self.partner_port, "datacenter", "REM:Globex support", GLOBEX_SYNC),
            ("jira-acme", self.local_port, "cloud", "LOC:Acme product", ACME_SYNC),
        ):
            command = jirasim_command(
                port=port, flavor=flavor, project=project, users=[user, ALICE], retry_base=0.5
            )
            self.processes.start(name, command, env=os.environ.copy())
        for url in (f"{self.local}/_sim/health", f"{self.partner}/_sim/health"):
            self.processes.wait_http(url)
        # Each Jira's admin registers one webhook: to their own install.
        for install, jira, user, project in (
            (self.installs["acme"], self.local, ACME_SYNC, "LOC"),
            (self.installs["globex"], self.partner, GLOBEX_SYNC, "REM"),
        ):
            secret = install.env["LOCAL_WEBHOOK_SECRET"]
            register_webhook(
                jira,
                user,
                f"{install.base_url}/webhooks/local/?secret={secret}",
                f'project = "{project}"',
            )
        self.connect()

    def connect(self) -> None:
        """What the two admins do, through their installs' APIs."""
        acme, globex = self.installs["acme"], self.installs["globex"]
        a, g = acme.session(), globex.session()
        started = time.monotonic()
        response = a.post(
            f"{acme.base_url}/api/organizations/",
            json={"name": "Globex", "syncDirection": "bidirectional"},
            timeout=30,
        )
        response.raise_for_status()
        self.org_acme = response.json()
        a.post(
            f"{acme.base_url}/api/organizations/{self.org_acme['id']}/project-mappings/",
            json={"localProjectKey": "LOC", "remoteProjectKey": "REM"},
            timeout=30,
        ).raise_for_status()
        response = a.post(
            f"{acme.base_url}/api/organizations/{self.org_acme['id']}/invitation/", timeout=30
        )
        response.raise_for_status()
        invitation = response.json()["invitation"]
        say(f"  Acme's admin created a connection invitation ({len(invitation)} characters).")
        response = g.post(
            f"{globex.base_url}/api/connections/accept/",
            json={
                "invitation": invitation,
                "name": "Acme",
                "projectMappings": [{"localProjectKey": "REM", "remoteProjectKey": "LOC"}],
                "syncDirection": "bidirectional",
            },
            timeout=60,
        )
        if response.status_code != 201:
            raise RuntimeError(f"Globex could not accept: {response.status_code} {response.text}")
        self.org_globex = response.json()
        say("  Globex's admin pasted it, mapped REM to Acme's LOC, two-way.")

        def status(install: Install, session: requests.Session, org: dict) -> str:
            url = f"{install.base_url}/api/organizations/{org['id']}/"
            return session.get(url, timeout=10).json()["handshakeStatus"]

        self.until(
            lambda: (
                status(acme, a, self.org_acme) == "active"
                and status(globex, g, self.org_globex) == "active"
            ),
            timeout=60,
        )
        say(
            "  Both installs verified each other's signed hello: handshakeStatus active on both "
            f"sides, {time.monotonic() - started:.2f} s after the invitation was asked for."
        )

    @staticmethod
    def org_admin_url(install: Install, org: dict) -> str:
        return f"{install.admin_url}organizations/organization/?q={org['id']}"

    def scenario(self) -> None:
        say(
            "Guided scenario (Alice works in both Jiras: 'locally' is Acme's, 'the partner' is "
            "Globex's; each change crosses from one install to the other as a signed message):"
        )
        local_key, remote_key = self.step_create()
        self.step_partner_edit(local_key, remote_key)
        self.step_partner_comment(local_key, remote_key)
        self.step_transition(local_key, remote_key)

    def banner(self) -> None:
        acme, globex = self.installs["acme"], self.installs["globex"]
        say()
        say("Jira sync demo, Scenario B (two installs connected by invitation), is running.")
        say(f"  Acme's admin:    {acme.admin_url}   user 'admin', password '{ADMIN_PASSWORD}'")
        say(f"    organization:  {self.org_admin_url(acme, self.org_acme)}")
        say(f"  Globex's admin:  {globex.admin_url}   user 'admin', password '{ADMIN_PASSWORD}'")
        say(f"    organization:  {self.org_admin_url(globex, self.org_globex)}")
        say(
            f"  Acme's Jira:     {self.local}/   (Cloud, project LOC; written only by "
            "Acme's install)"
        )
        say(
            f"  Globex's Jira:   {self.partner}/   (Data Center, project REM; written only by "
            "Globex's install)"
        )
        say(f"  Logs:            {self.var}/")
        say("Press Ctrl-C to stop.")


def main() -> int:
    return run(DemoB(), "Starting two installs of the service and their two Jira simulators ...")


if __name__ == "__main__":
    sys.exit(main())
