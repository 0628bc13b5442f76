"""Reconciliation catch-up on an idle site: the Jira calls it costs per hour with N linked
pairs (default 1,000), and what one run costs while every pair is inside its window.

    .venv/bin/python bench/reconcile_idle.py [--pairs 1000] [--runs 3]

Two Jira simulators (`python -m jirasim`, Cloud) and a fresh PostgreSQL database
(`BENCH_DATABASE_URL`, default .../syncapp_bench_reconcile); the pairs are made by the
product's own backfill (`sync_backfill`), two-way. The catch-up runs in this process (the
Celery task only calls it). Jira calls are counted in the simulators' call logs.
Results: `bench/results/reconcile.json` and the table printed at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from stack import ALICE, RESULTS, SYNC_LOCAL, SYNC_PARTNER, Stack  # noqa: E402

PERIOD = 300.0  # the default SYNC_RECONCILE_SECONDS: the figure per hour is for it


def calls(url: str) -> list[dict]:
    return requests.get(f"{url}/_sim/calls", timeout=30).json()["calls"]


def clear(*urls: str) -> None:
    for url in urls:
        requests.delete(f"{url}/_sim/calls", timeout=30)


def counted(urls: dict[str, str]) -> dict[str, int]:
    return {side: len(calls(url)) for side, url in urls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/syncapp_bench_reconcile"
    )
    stack = Stack(workers=1, results=RESULTS / "reconcile")
    try:
        result = run(stack, args.pairs, args.runs)
    finally:
        stack.processes.stop(20)
    out = RESULTS / "reconcile.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nReconciliation catch-up, {args.pairs} linked pairs, two-way, one project mapping")
    print("| figure | value |\n|---|---|")
    for name, value in result["table"]:
        print(f"| {name} | {value} |")
    print(f"\n(written to {out.relative_to(REPO)})")


def fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def run(stack: Stack, pairs: int, runs: int) -> dict:
    import subprocess

    fresh_database(stack.db_url)
    stack.local = stack.sim("jirasim-local", "LOC:Local", SYNC_LOCAL)
    stack.partner = stack.sim("jirasim-partner", "REM:Partner", SYNC_PARTNER)
    env = stack.service_env()
    env.update(
        CELERY_BROKER_URL="memory://",  # nothing is queued: the catch-up runs in this process
        CACHE_URL="locmemcache://",
        LOG_LEVEL="WARNING",
        SYNC_RECONCILE_SECONDS=str(PERIOD),
        # The idle figure: nothing changed within the window (the overlap only widens the
        # window; issues inside it cost no call beyond the search pages that list them).
        SYNC_RECONCILE_OVERLAP_SECONDS="0",
        SYNC_RECONCILE_GRACE_SECONDS="0",
    )
    os.environ.update(env)
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncapp.settings")
    django.setup()
    from django.core.management import call_command

    from organizations import services as org_services
    from sync.models import IssueLink
    from sync.reconcile import reconcile_catch_up

    org = org_services.organization_create(
        name="Bench partner",
        remote_base_url=stack.partner,
        remote_flavor="cloud",
        remote_user=SYNC_PARTNER[0],
        remote_token=SYNC_PARTNER[1],
        sync_direction="bidirectional",
    )
    org_services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    print(f"creating {pairs} local issues and their partner copies (sync_backfill) ...")
    session = requests.Session()
    session.auth = ALICE
    for n in range(pairs):
        fields = {"project": {"key": "LOC"}, "issuetype": {"name": "Task"}, "summary": f"#{n}"}
        response = session.post(
            f"{stack.local}/rest/api/3/issue", json={"fields": fields}, timeout=30
        )
        response.raise_for_status()
    started = time.monotonic()
    call_command("sync_backfill", org.public_id, stdout=io.StringIO(), stderr=io.StringIO())
    backfill_s = time.monotonic() - started
    linked = IssueLink.objects.filter(organization=org, status="linked").count()
    assert linked == pairs, f"{linked} pairs linked of {pairs}"
    urls = {"local": stack.local, "partner": stack.partner}

    # Every pair inside the window (all were just changed): the run's cost, all in step.
    clear(*urls.values())
    started = time.monotonic()
    busy = reconcile_catch_up(organization=org)
    busy_s = time.monotonic() - started
    busy_calls = counted(urls)
    assert busy.healed == 0, busy.changes

    # Idle: nothing changed since the last run (the window counts whole minutes).
    print("waiting 61 s so that no pair is inside the window any more ...")
    time.sleep(61)
    reconcile_catch_up(organization=org)
    idle = []
    for _ in range(runs):
        clear(*urls.values())
        started = time.monotonic()
        report = reconcile_catch_up(organization=org)
        idle.append(
            {
                "calls": counted(urls),
                "seconds": time.monotonic() - started,
                "searched": report.searched,
            }
        )
    per_run = max(sum(r["calls"].values()) for r in idle)
    per_hour = per_run * 3600 / PERIOD
    idle_ms = 1000 * max(r["seconds"] for r in idle)
    return {
        "pairs": pairs,
        "period_s": PERIOD,
        "backfill_s": round(backfill_s, 1),
        "in_window_run": {
            "calls": busy_calls,
            "seconds": round(busy_s, 2),
            "examined": busy.examined,
            "searched": busy.searched,
        },
        "idle_runs": idle,
        "idle_calls_per_run": per_run,
        "idle_calls_per_hour": per_hour,
        "table": [
            ("linked pairs", pairs),
            ("period (SYNC_RECONCILE_SECONDS)", f"{PERIOD:.0f} s"),
            ("idle: Jira calls per run (both sites)", per_run),
            ("idle: Jira calls per hour", f"{per_hour:.0f}"),
            ("idle: one run takes", f"{idle_ms:.0f} ms"),
            (
                "every pair in the window: calls per run",
                f"{sum(busy_calls.values())} (search pages of 100, no other call)",
            ),
            ("every pair in the window: one run takes", f"{busy_s:.2f} s ({busy.examined} issues)"),
        ],
    }


if __name__ == "__main__":
    main()
