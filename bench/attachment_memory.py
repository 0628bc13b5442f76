"""A large attachment through a real Celery worker: how much the worker's memory grows.

The deployment stack (`stack.py`: gunicorn, PostgreSQL, Redis, one Celery worker with one
pool process, two Jira simulators as processes), a linked issue pair, a small attachment
first (so imports and connection pools are warm), then one of `--megabytes` (default 20)
attached locally by a person and copied by the worker to the partner. The copy moves through
a temporary file, so the worker's peak memory should grow far less than the file's size.

Measured from /proc/<pid>/status of the worker's pool process (where the task runs) and of
the worker's main process: VmRSS before, VmHWM (the peak resident size) before and after.
The figure is reported, not asserted (`limit_mib` is the issue's goal: less than 10 MB).

Usage: python bench/attachment_memory.py [--megabytes 20]
Writes bench/results/attachment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO)]
import requests  # noqa: E402
from harness import Bench  # noqa: E402
from stack import ALICE, RESULTS, Stack  # noqa: E402

LIMIT_MIB = 10.0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=20)
    return parser.parse_args()


def status_kib(pid: int, name: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"{name}:\s+(\d+) kB", text)
    return int(match.group(1)) if match else 0


def pool_pids(worker_pid: int) -> list[int]:
    try:
        return [
            int(c)
            for c in Path(f"/proc/{worker_pid}/task/{worker_pid}/children").read_text().split()
        ]
    except OSError:
        return []


def memory(worker_pid: int) -> dict[str, dict[str, int]]:
    out = {}
    for pid in [worker_pid, *pool_pids(worker_pid)]:
        out[str(pid)] = {"rss_kib": status_kib(pid, "VmRSS"), "hwm_kib": status_kib(pid, "VmHWM")}
    return out


def attach(bench: Bench, key: str, name: str, content: bytes) -> None:
    response = requests.post(
        f"{bench.stack.local}/rest/api/3/issue/{key}/attachments",
        files=[("file", (name, content, "application/octet-stream"))],
        headers={"X-Atlassian-Token": "no-check"},
        auth=ALICE,
        timeout=120,
    )
    response.raise_for_status()


def partner_files(bench: Bench, key: str) -> list[tuple[str, int]]:
    fields = bench.api(bench.stack.partner, "GET", f"/issue/{key}")["fields"]
    return sorted((a["filename"], a["size"]) for a in fields.get("attachment") or [])


def measure(stack: Stack, args: argparse.Namespace) -> dict:
    bench = Bench(stack)  # sets Django up
    from sync.models import IssueLink

    key = bench.create(stack.local, "LOC", "Attachment memory")
    bench.settle(120)
    remote = IssueLink.objects.get(local_issue_key=key).remote_issue_key
    attach(bench, key, "warm-up.bin", os.urandom(64 * 1024))
    bench.settle(120)
    worker = stack.worker.popen.pid
    before = memory(worker)
    size = args.megabytes * 1024 * 1024
    started = time.perf_counter()
    attach(bench, key, "large.bin", os.urandom(size))
    bench.settle(600)
    seconds = time.perf_counter() - started
    after = memory(worker)
    copied = ("large.bin", size) in partner_files(bench, remote)
    rows = {}
    for pid, now in after.items():
        then = before.get(pid, {"rss_kib": 0, "hwm_kib": 0})
        rows[pid] = {
            "role": "main" if pid == str(worker) else "pool",
            "rss_before_kib": then["rss_kib"],
            "hwm_before_kib": then["hwm_kib"],
            "hwm_after_kib": now["hwm_kib"],
            "rss_after_kib": now["rss_kib"],
            # The peak while the copy ran, over the resident size before it.
            "peak_growth_kib": max(0, now["hwm_kib"] - then["rss_kib"]),
        }
    growth_mib = max(r["peak_growth_kib"] for r in rows.values()) / 1024
    return {
        "attachment_mib": args.megabytes,
        "copied": copied,
        "seconds": round(seconds, 2),
        "worker_peak_growth_mib": round(growth_mib, 2),
        "limit_mib": LIMIT_MIB,
        "ratio_to_limit": round(growth_mib / LIMIT_MIB, 3),
        "ratio_to_file": round(growth_mib / args.megabytes, 3),
        "processes": rows,
    }


def main() -> int:
    args = arguments()
    stack = Stack(workers=1, results=RESULTS)
    try:
        stack.start()
        results = measure(stack, args)
    finally:
        stack.stop()
    results["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version[:6]}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "attachment.json").write_text(json.dumps(results, indent=2))
    print(
        f"{results['attachment_mib']} MiB attachment copied={results['copied']} in "
        f"{results['seconds']} s: worker peak memory grew {results['worker_peak_growth_mib']} MiB "
        f"(limit {LIMIT_MIB} MiB, ratio {results['ratio_to_limit']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
