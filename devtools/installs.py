"""A complete install of the service as processes, for Scenario B (two installs connected by
invitation): its database migrated, an admin user, a web server and, unless its Celery tasks
run in the web process (`CELERY_TASK_ALWAYS_EAGER`), a worker with beat.

`make demo-b` starts two of them; the system and browser tests start a partner install with
it. The caller gives the environment (its own database and `VAR_DIR`, its own Jira); this
adds the install's address and admin login.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devtools.processes import PYTHON, worker_command
from devtools.supervisor import REPO, Process, Supervisor


@dataclass
class Install:
    """One running install: where it answers and how its admin logs in."""

    name: str
    base_url: str
    admin: tuple[str, str]
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/admin/"

    def session(self) -> requests.Session:
        """An HTTP session on its API as its admin (HTTP Basic)."""
        session = requests.Session()
        session.auth = self.admin
        return session

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """`manage.py <args>` on this install's settings."""
        return subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )


def install_start(
    processes: Supervisor,
    *,
    name: str,
    port: int,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    admin: tuple[str, str],
    logs: Path,
    worker: bool = True,
    timeout: float = 90,
) -> Install:
    """Migrate, create the admin user, start the web server (and a worker with beat unless
    `worker=False`), and return once it answers. Its processes stop with `processes`.

    It listens on 127.0.0.1; `host` names it in its own URL (`localhost` gives a second install
    on the same machine cookies of its own in a browser)."""
    base_url = f"http://{host}:{port}"
    install = Install(
        name=name,
        base_url=base_url,
        admin=admin,
        env={
            **env,
            "PUBLIC_BASE_URL": base_url,
            "ADMIN_USERNAME": admin[0],
            "ADMIN_PASSWORD": admin[1],
            "PYTHONUNBUFFERED": "1",
        },
    )
    logs.mkdir(parents=True, exist_ok=True)
    install.manage("migrate", "--no-input", "-v0")
    install.manage("ensure_admin")
    if worker:
        command = [
            *worker_command(concurrency=2),
            "--hostname",
            f"{name}@%h",
            "--beat",
            "--schedule",
            str(logs / f"{name}-beat-schedule"),
        ]
        install.processes.append(
            processes.start(
                f"{name}-worker", command, env=install.env, log=logs / f"{name}-worker.log"
            )
        )
    install.processes.append(
        processes.start(
            f"{name}-web",
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=install.env,
            log=logs / f"{name}-web.log",
        )
    )
    processes.wait_http(f"{base_url}/healthz", timeout=timeout)
    if worker:
        install.processes[0].wait_for(" ready.", timeout=timeout)
    return install
