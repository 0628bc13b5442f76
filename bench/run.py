"""Sync benchmarks on the deployment configuration.

gunicorn + PostgreSQL + Redis + a Celery worker and beat, between two Jira simulators
(`python -m jirasim`), all on this machine. Measures:

- Jira calls per change: for each kind of genuine change, the calls the sync spent (reads
  and writes) next to the minimum possible (one write), and the calls spent on each echo.
- End-to-end latency, push and pull: Jira's event time -> the other site written, at a
  steady rate of changes, p50/p95/p99 and the share within one second.

Usage: python bench/run.py [--quick] [--rates 1,20] [--seconds 30]
Writes bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable
SYNC_LOCAL = ("sync@local.example", "local-token")
SYNC_PARTNER = ("sync@partner.example", "partner-token")
ALICE = ("alice@example.com", "alice-token")
WEBHOOK_SECRET = "bench-local-webhook-secret"
EVENTS = [
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Stack:
    """Every process of the deployment, started and stopped together."""

    def __init__(self, workers: int) -> None:
        self.procs: list[subprocess.Popen] = []
        self.logs = RESULTS / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.db_url = os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/syncapp_bench"
        )
        self.broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
        self.web_port = free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.workers = workers

    def spawn(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(  # noqa: S603
            args,
            cwd=REPO,
            env=env or os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def sim(self, name: str, project: str, user: tuple[str, str]) -> str:
        port = free_port()
        self.spawn(
            name,
            [
                PYTHON,
                "-m",
                "jirasim",
                "--port",
                str(port),
                "--flavor",
                "cloud",
                "--project",
                project,
                "--user",
                ":".join(user),
                "--user",
                ":".join(ALICE),
                "--webhook-workers",
                "4",
                "--webhook-retry-base",
                "0.2",
            ],
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_sim/health")
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

    def start(self) -> None:
        self.fresh_database()
        self.local = self.sim("jirasim-local", "LOC:Local", SYNC_LOCAL)
        self.partner = self.sim("jirasim-partner", "REM:Partner", SYNC_PARTNER)
        self.env = {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": self.broker,
            "PUBLIC_BASE_URL": self.base,
            "LOCAL_JIRA_URL": self.local,
            "LOCAL_JIRA_FLAVOR": "cloud",
            "LOCAL_JIRA_USER": SYNC_LOCAL[0],
            "LOCAL_JIRA_TOKEN": SYNC_LOCAL[1],
            "LOCAL_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DEBUG": "false",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "FIELD_ENCRYPTION_KEYS": "bench-field-encryption-key",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "60",
            "VAR_DIR": str(RESULTS / "var"),
        }
        os.environ.update(self.env)
        subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=REPO,
            env=self.env,
            check=True,
        )
        self.spawn(
            "gunicorn",
            [
                PYTHON,
                "-m",
                "gunicorn",
                "syncapp.wsgi",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "-w",
                "2",
                "--threads",
                "4",
            ],
            self.env,
        )
        self.spawn(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "syncapp",
                "worker",
                "-l",
                "WARNING",
                f"--concurrency={self.workers}",
                "--without-gossip",
                "--without-mingle",
            ],
            self.env,
        )
        self.spawn(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "syncapp",
                "beat",
                "-l",
                "WARNING",
                "--schedule",
                str(RESULTS / "var" / "beat-schedule"),
            ],
            self.env,
        )
        wait_http(f"{self.base}/healthz")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncapp.settings")
        sys.path.insert(0, str(REPO))
        django.setup()
        from organizations import services

        self.org = services.organization_create(
            name="Bench partner",
            remote_base_url=stack.partner,
            remote_user=SYNC_PARTNER[0],
            remote_token=SYNC_PARTNER[1],
            sync_direction="bidirectional",
        )
        services.project_mapping_create(
            organization=self.org, local_project_key="LOC", remote_project_key="REM"
        )
        self.hook(stack.local, f"{stack.base}/webhooks/local/?secret={WEBHOOK_SECRET}", "LOC")
        self.hook(
            stack.partner,
            f"{self.org.incoming_webhook_url}?secret={self.org.incoming_secret}",
            "REM",
        )
        self.session = requests.Session()
        self.session.auth = ALICE

    def hook(self, site: str, url: str, project: str) -> None:
        body = {
            "name": "sync",
            "url": url,
            "events": EVENTS,
            "filters": {"issue-related-events-section": f'project = "{project}"'},
        }
        response = requests.post(
            f"{site}/rest/webhooks/1.0/webhook",
            json=body,
            auth=SYNC_LOCAL if site == self.stack.local else SYNC_PARTNER,
            timeout=10,
        )
        response.raise_for_status()

    def api(self, site: str, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{site}/rest/api/3{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def settle(self, timeout: float = 60) -> None:
        from webhooks.models import WebhookDelivery

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle = all(
                requests.get(f"{s}/_sim/idle?timeout=0.5", timeout=5).status_code == 200
                for s in (self.stack.local, self.stack.partner)
            )
            busy = WebhookDelivery.objects.filter(status__in=["pending", "processing", "failed"])
            if idle and not busy.exists():
                time.sleep(0.3)
                if not busy.exists():
                    return
            time.sleep(0.1)
        raise RuntimeError("the sync did not settle")

    def writes(self) -> int:
        total = 0
        for site, user in ((self.stack.local, SYNC_LOCAL), (self.stack.partner, SYNC_PARTNER)):
            calls = requests.get(f"{site}/_sim/calls", timeout=10).json()["calls"]
            total += sum(
                1
                for c in calls
                if c.get("user") == user[0]
                and c["method"] in ("POST", "PUT", "DELETE")
                and c["status"] < 400
            )
        return total

    def create(self, site: str, project: str, summary: str) -> str:
        body = {
            "fields": {
                "project": {"key": project},
                "issuetype": {"name": "Task"},
                "summary": summary,
            }
        }
        return self.api(site, "POST", "/issue", json=body)["key"]

    # --- Jira calls per change ----------------------------------------------------------

    def calls_per_change(self) -> list[dict]:
        from syncapp.sync.models import IssueLink
        from webhooks.models import WebhookDelivery

        local, partner = self.stack.local, self.stack.partner
        state = {}

        def create():
            state["key"] = self.create(local, "LOC", "Calls per change")

        def edit():
            self.api(local, "PUT", f"/issue/{state['key']}", json={"fields": {"summary": "Edited"}})

        def transition():
            ts = self.api(local, "GET", f"/issue/{state['key']}/transitions")["transitions"]
            target = next(t for t in ts if t["to"]["name"] == "In Progress")
            self.api(
                local,
                "POST",
                f"/issue/{state['key']}/transitions",
                json={"transition": {"id": target["id"]}},
            )

        def comment():
            body = {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "A comment"}]}
                ],
            }
            self.api(local, "POST", f"/issue/{state['key']}/comment", json={"body": body})

        def partner_edit():
            remote = IssueLink.objects.get(local_issue_key=state["key"]).remote_issue_key
            self.api(
                partner, "PUT", f"/issue/{remote}", json={"fields": {"priority": {"name": "High"}}}
            )

        rows = []
        for name, action, minimum in (
            ("create (push)", create, 1),
            ("field edit (push)", edit, 1),
            ("transition (push)", transition, 1),
            ("comment (push)", comment, 1),
            ("field edit (pull)", partner_edit, 1),
        ):
            self.settle()
            first = (
                WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            )
            writes_before = self.writes()
            action()
            self.settle()
            new = WebhookDelivery.objects.filter(pk__gt=first)
            genuine = [d.calls for d in new if d.status == "done"]
            echoes = [d.calls for d in new if d.status == "echo"]
            rows.append(
                {
                    "change": name,
                    "deliveries": new.count(),
                    "calls": sum(genuine),
                    "writes": self.writes() - writes_before,
                    "minimum_writes": minimum,
                    "echo_deliveries": len(echoes),
                    "calls_per_echo": (sum(echoes) / len(echoes)) if echoes else None,
                }
            )
        return rows

    # --- latency ---------------------------------------------------------------------------

    def latency(self, way: str, rate: float, seconds: float, issues: int = 20) -> dict:
        from syncapp.sync.models import IssueLink, SyncEvent

        self.settle()
        local, partner = self.stack.local, self.stack.partner
        keys = []
        for n in range(issues):
            keys.append(self.create(local, "LOC", f"Latency {way} {rate} {n}"))
        self.settle(120)
        if way == "pull":
            links = dict(
                IssueLink.objects.filter(local_issue_key__in=keys).values_list(
                    "local_issue_key", "remote_issue_key"
                )
            )
            keys = [links[k] for k in keys]
        site = local if way == "push" else partner
        since = datetime.now(UTC)
        total = int(rate * seconds)
        start = time.monotonic()

        def change(n: int) -> None:
            self.api(
                site,
                "PUT",
                f"/issue/{keys[n % len(keys)]}",
                json={"fields": {"summary": f"{way} change {n} at {rate}/s"}},
            )

        with ThreadPoolExecutor(max_workers=32) as pool:
            for n in range(total):
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(change, n)
        self.settle(300)
        latencies = list(
            SyncEvent.objects.filter(created_at__gte=since, direction=way, result="written")
            .exclude(latency_ms=None)
            .values_list("latency_ms", flat=True)
        )
        return {
            "direction": way,
            "rate_per_s": rate,
            "seconds": seconds,
            "changes": total,
            "synced": len(latencies),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
            "within_1s": round(sum(1 for v in latencies if v <= 1000) / len(latencies), 3)
            if latencies
            else None,
        }


def markdown(results: dict) -> str:
    lines = [
        f"# Benchmark results ({results['when']})",
        "",
        f"Machine: {results['machine']}. Mode: {results['mode']}.",
        "",
        "## Jira calls per change",
        "",
        "| change | deliveries | calls (reads + writes) | writes | minimum writes "
        "| echo deliveries | calls per echo |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["calls_per_change"]:
        lines.append(
            f"| {row['change']} | {row['deliveries']} | {row['calls']} | {row['writes']} | "
            f"{row['minimum_writes']} | {row['echo_deliveries']} | {row['calls_per_echo']} |"
        )
    lines += [
        "",
        "## End-to-end latency (Jira event time -> other site written)",
        "",
        "| direction | changes/s | changes | synced | p50 ms | p95 ms | p99 ms | within 1 s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["latency"]:
        lines.append(
            f"| {row['direction']} | {row['rate_per_s']} | {row['changes']} | {row['synced']} | "
            f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['within_1s']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small rates, short runs (CI)")
    parser.add_argument("--rates", default="1,20")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rates = [2.0] if args.quick else [float(r) for r in args.rates.split(",")]
    seconds = 5.0 if args.quick else args.seconds
    stack = Stack(workers=args.workers)
    try:
        stack.start()
        bench = Bench(stack)
        results = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "calls_per_change": bench.calls_per_change(),
            "latency": [
                bench.latency(way, rate, seconds) for rate in rates for way in ("push", "pull")
            ],
        }
    finally:
        stack.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(results))
    print(markdown(results))
    missing = [r for r in results["latency"] if r["synced"] < r["changes"] * 0.5]
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
