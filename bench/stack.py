"""The deployment the benchmarks run against, started and stopped together: gunicorn,
PostgreSQL (a fresh database), Redis, a Celery worker and beat, between two Jira simulators
(`python -m jirasim`), all on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from devtools.processes import beat_command, jirasim_command, worker_command
from devtools.supervisor import Process, Supervisor, free_port, wait_http

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable
SYNC_LOCAL = ("sync@local.example", "local-token")
SYNC_PARTNER = ("sync@partner.example", "partner-token")
ALICE = ("alice@example.com", "alice-token")
WEBHOOK_SECRET = "bench-local-webhook-secret"
PARTNER_HOOK_SECRET = "bench-partner-webhook-secret"  # signs the partner's deliveries
METRICS_TOKEN = "bench-metrics-token"  # a scraper's bearer token for /metrics


class Stack:
    """Every process of the deployment, started and stopped together; logs in `results/logs`."""

    def __init__(self, workers: int, results: Path = RESULTS) -> None:
        self.results = results
        self.logs = results / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes = Supervisor(logs=self.logs)
        self.db_url = os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/syncapp_bench"
        )
        self.broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
        self.web_port = free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.workers = workers
        self.worker: Process | None = None
        self.web: Process | None = None

    def sim(self, name: str, project: str, user: tuple[str, str]) -> str:
        port = free_port()
        command = jirasim_command(
            port=port, flavor="cloud", project=project, users=[user, ALICE], retry_base=0.2
        )
        process = self.processes.start(name, [*command, "--webhook-workers", "4"])
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_sim/health", processes=[process])
        return url

    def fresh_database(self) -> None:
        import psycopg

        parts = urlsplit(self.db_url)
        name = parts.path.lstrip("/")
        admin = self.db_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        import redis

        redis.Redis.from_url(self.broker).flushdb()

    def service_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": self.broker,
            "PUBLIC_BASE_URL": self.base,
            "LOCAL_JIRA_URL": self.local,
            "LOCAL_JIRA_FLAVOR": "cloud",
            "LOCAL_JIRA_USER": SYNC_LOCAL[0],
            "LOCAL_JIRA_TOKEN": SYNC_LOCAL[1],
            "LOCAL_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "JIRA_ALLOW_HTTP": "true",  # the simulators: plain http on 127.0.0.1
            "JIRA_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "false",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "FIELD_ENCRYPTION_KEYS": "bench-field-encryption-key",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "60",
            "VAR_DIR": str(self.results / "var"),
            # Every process's counters (Jira calls per site), summed by /metrics.
            "PROMETHEUS_MULTIPROC_DIR": str(self.results / "var" / "metrics"),
            # The metrics scenario scrapes with a token, each scrape reading the database.
            "METRICS_TOKEN": METRICS_TOKEN,
            "METRICS_CACHE_SECONDS": "0",
            "BENCH_ENDPOINTS": "true",
        }

    def start(self) -> None:
        self.fresh_database()
        self.local = self.sim("jirasim-local", "LOC:Local", SYNC_LOCAL)
        self.partner = self.sim("jirasim-partner", "REM:Partner", SYNC_PARTNER)
        self.env = self.service_env()
        os.environ.update(self.env)
        shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)  # last run's
        Path(self.env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=REPO,
            env=self.env,
            check=True,
        )
        self.start_web()
        self.start_worker(self.workers)
        self.processes.start(
            "beat",
            beat_command(schedule=str(self.results / "var" / "beat-schedule"), loglevel="WARNING"),
            env=self.env,
        )
        self.processes.wait_http(f"{self.base}/healthz")

    def start_web(self, **overrides: str) -> None:
        """gunicorn (2 workers x 4 threads), with `overrides` on top of the stack's env."""
        gunicorn = [PYTHON, "-m", "gunicorn", "-c", "syncapp/gunicorn.conf.py", "syncapp.wsgi"]
        gunicorn += ["-b", f"127.0.0.1:{self.web_port}"]
        self.web = self.processes.start(
            f"gunicorn-{len(self.processes.processes)}" if self.web else "gunicorn",
            [*gunicorn, "-w", "2", "--threads", "4"],
            env={**self.env, **overrides},
        )

    def restart_web(self, **overrides: str) -> None:
        """The web processes again, with `overrides` (e.g. a setting a scenario compares)."""
        self.web.terminate(30)
        self.start_web(**overrides)
        deadline = time.monotonic() + 120
        while True:  # a loaded machine may take more than wait_http's 2 s to answer at first
            try:
                wait_http(f"{self.base}/healthz", processes=[self.web])
                return
            except requests.Timeout:
                if time.monotonic() > deadline:
                    raise

    def start_worker(self, concurrency: int) -> None:
        """A worker with `concurrency` processes, once it answers `celery inspect ping` (it
        logs nothing at WARNING when ready)."""
        log = f"worker-{concurrency}-{len(self.processes.processes)}"
        self.worker = self.processes.start(
            log, worker_command(concurrency=concurrency, loglevel="WARNING"), env=self.env
        )
        ping = [PYTHON, "-m", "celery", "-A", "syncapp", "inspect", "ping", "--timeout", "1"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = subprocess.run(ping, cwd=REPO, env=self.env, capture_output=True)  # noqa: S603
            if answer.returncode == 0:
                return
            if not self.worker.running():
                break
        raise RuntimeError(f"the worker did not start; see {self.logs / log}.log")

    def drop_queued(self) -> None:
        """Empty every queue a worker consumes (the deliveries' queues and Celery's own)."""
        import redis
        from django.conf import settings

        redis.Redis.from_url(self.broker).delete(*[q.name for q in settings.CELERY_TASK_QUEUES])

    def stop_worker(self) -> None:
        self.worker.terminate(30, group=False)  # the main process: it stops its own pool

    def stop(self) -> None:
        self.processes.stop(15)
