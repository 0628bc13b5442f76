"""Reconciliation's drift check: how long a full check of N linked pairs takes, and the Jira
calls it makes; then the same with some pairs drifted, and the repair of those.

Two Jira simulators as processes (Cloud flavor), a fresh PostgreSQL database; the check and
the repair run in this process, as the beat task runs them in a worker (no web server, no
webhooks: nothing else calls the simulators meanwhile).

Usage: python bench/drift.py [--pairs 1000] [--drifted 10] [--page-size 100]
Writes bench/results/drift.json and bench/results/drift.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO)]
import requests  # noqa: E402
from stack import ALICE, PYTHON, RESULTS, SYNC_LOCAL, SYNC_PARTNER, Stack  # noqa: E402

BULK = 50  # Jira's limit per bulk create


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--drifted", type=int, default=10, help="pairs edited at the partner")
    parser.add_argument("--page-size", type=int, default=100, help="SYNC_DRIFT_PAGE_SIZE")
    return parser.parse_args()


def create_issues(site: str, project: str, n: int) -> list[dict]:
    session = requests.Session()
    session.auth = ALICE
    made: list[dict] = []
    while len(made) < n:
        batch = min(BULK, n - len(made))
        updates = [
            {
                "fields": {
                    "project": {"key": project},
                    "issuetype": {"name": "Task"},
                    "summary": f"Pair {len(made) + i}",
                    "priority": {"name": "Medium"},
                    "labels": ["bench"],
                }
            }
            for i in range(batch)
        ]
        response = session.post(
            f"{site}/rest/api/3/issue/bulk", json={"issueUpdates": updates}, timeout=60
        )
        response.raise_for_status()
        made += response.json()["issues"]
    return made


def calls_of(site: str, user: str) -> Counter:
    log = requests.get(f"{site}/_sim/calls", timeout=30).json()["calls"]
    return Counter(_kind(c) for c in log if c.get("user") == user)


def _kind(call: dict) -> str:
    """`POST search`, `GET issue`, ...: the method and the resource after /rest/api/<n>/."""
    parts = call["path"].split("/")
    return f"{call['method']} {parts[4] if len(parts) > 4 else call['path']}"


def reset_calls(*sites: str) -> None:
    for site in sites:
        requests.delete(f"{site}/_sim/calls", timeout=30)


def measure(stack: Stack, args: argparse.Namespace) -> dict:
    from organizations import services
    from sync import drift
    from sync.models import IssueLink, LinkStatus

    org = services.organization_create(
        name="Drift bench partner",
        remote_base_url=stack.partner,
        remote_user=SYNC_PARTNER[0],
        remote_token=SYNC_PARTNER[1],
        sync_direction="bidirectional",
    )
    services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    local = create_issues(stack.local, "LOC", args.pairs)
    remote = create_issues(stack.partner, "REM", args.pairs)
    IssueLink.objects.bulk_create(
        IssueLink(
            organization=org,
            local_issue_id=str(a["id"]),
            local_issue_key=a["key"],
            remote_issue_id=str(b["id"]),
            remote_issue_key=b["key"],
            status=LinkStatus.LINKED,
        )
        for a, b in zip(local, remote, strict=True)
    )
    sites = (stack.local, stack.partner)
    results: dict = {"pairs": args.pairs, "page_size": args.page_size}

    def run(name: str, fn) -> dict:
        reset_calls(*sites)
        started = time.perf_counter()
        outcome = fn()
        seconds = time.perf_counter() - started
        calls = calls_of(stack.local, SYNC_LOCAL[0]) + calls_of(stack.partner, SYNC_PARTNER[0])
        row = {"seconds": round(seconds, 2), "calls": sum(calls.values()), "by_call": calls}
        print(f"{name}: {row['seconds']} s, {row['calls']} Jira calls", file=sys.stderr)
        return row | outcome

    def check() -> dict:
        report = drift.drift_check(organization=org, page_size=args.page_size)
        return {"drifted": report.drifted, "gone": report.gone, "checked": report.pairs}

    results["in_step"] = run("full check, every pair in step", check)
    results["in_step_again"] = run("the same again (clients warm)", check)
    session = requests.Session()
    session.auth = ALICE
    for b in remote[: args.drifted]:
        session.put(
            f"{stack.partner}/rest/api/3/issue/{b['key']}",
            json={"fields": {"summary": f"Edited at the partner {b['key']}"}},
            timeout=30,
        ).raise_for_status()
    results["with_drift"] = run(f"full check, {args.drifted} pairs drifted", check)

    def repair() -> dict:
        outcomes = drift.drift_repair(organization=org)
        return {"repaired": sum(o.action == "repaired" for o in outcomes)}

    results["repair"] = run(f"repair of the {args.drifted} drifted pairs", repair)
    results["after_repair"] = run("full check after the repair", check)
    return results


def markdown(results: dict) -> str:
    rows = [
        ("Full check, every pair in step", results["in_step"]),
        ("The same again", results["in_step_again"]),
        (f"Full check, {results['drifted']} pairs drifted", results["with_drift"]),
        (f"Repair of the {results['drifted']} drifted pairs", results["repair"]),
        ("Full check after the repair", results["after_repair"]),
    ]
    lines = [
        f"# Drift check: {results['pairs']} linked pairs",
        "",
        f"{results['when']} on {results['machine']}; page size {results['page_size']}.",
        "",
        "| run | seconds | Jira calls | found drifted | calls by kind |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in rows:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(row["by_call"].items()))
        found = row.get("drifted", row.get("repaired", ""))
        lines.append(f"| {name} | {row['seconds']} | {row['calls']} | {found} | {kinds} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = arguments()
    stack = Stack(workers=1, results=RESULTS)
    try:
        stack.fresh_database()
        stack.local = stack.sim("jirasim-local", "LOC:Local", SYNC_LOCAL)
        stack.partner = stack.sim("jirasim-partner", "REM:Partner", SYNC_PARTNER)
        env = stack.service_env() | {"SYNC_DRIFT_GRACE_SECONDS": "0"}  # the issues are new
        os.environ.update(env)
        subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True
        )
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncapp.settings")
        django.setup()
        results = measure(stack, args)
    finally:
        stack.stop()
    results["drifted"] = args.drifted
    results["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version[:6]}"
    (RESULTS / "drift.json").write_text(json.dumps(results, indent=2, default=dict))
    (RESULTS / "drift.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
