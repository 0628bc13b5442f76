"""Sync benchmarks on the deployment configuration.

gunicorn + PostgreSQL + Redis + a Celery worker and beat, between two Jira simulators
(`python -m jirasim`), all on this machine. Measures:

- Jira calls per change: for each kind of genuine change, the calls the sync spent (reads
  and writes) next to the minimum possible (one write), and the calls spent on each echo.
- End-to-end latency, push and pull: Jira's event time -> the other site written, at a
  steady rate of changes, p50/p95/p99 and the share within one second.
- Fairness: partner B's change latency while partner A floods, fair queues against one FIFO.
- Refusals: an unauthenticated delivery (small, 1 MB, unknown organization, throttled)
  against an accepted one, median request time of alternating rounds and the ratio.

Usage: python bench/run.py [--quick] [--rates 1,20] [--seconds 30]
Writes bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO)]
# bench/*.py, one module a purpose: the stack, the harness, each scenario, the report.
from burst import burst, scaling  # noqa: E402
from calls import calls_per_change  # noqa: E402
from fairness import fairness  # noqa: E402
from harness import Bench  # noqa: E402
from ingest import ingest  # noqa: E402
from latency import latency  # noqa: E402
from metrics_agree import metrics_agree  # noqa: E402
from profiles import profile  # noqa: E402
from refusals import refusals  # noqa: E402
from report import KEY_FIGURES, lookup, markdown, plots  # noqa: E402
from stack import RESULTS, Stack  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs (CI)")
    parser.add_argument("--rates", default="1,20,100")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--peak-seconds", type=float, default=60, help="how long the top rate is sustained"
    )
    parser.add_argument(
        "--ladder",
        default="80,60,40,10",
        help="rates tried, from the top down, when the top rate misses p99 < 1 s ('' skips)",
    )
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scaling", default="1,2,4")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios (ingest,calls,latency,burst,drain,profile,fairness,"
        "metrics,refusals): a partial run, kept in results/runs/ only",
    )
    parser.add_argument("--flood", type=int, default=1000, help="partner A's flood (fairness)")
    return parser.parse_args()


WAYS = ("push", "pull")


def rate_key(way: str, rate: float) -> str:
    """The stable key of a latency row: `push_100`, `pull_20`, `push_2`..."""
    return f"{way}_{rate:g}".replace(".", "_")


def latencies(bench: Bench, rates: list[float], seconds: float, peak_seconds: float) -> dict:
    """Every rate both ways; the top rate runs `peak_seconds` (sustained)."""
    top = max(rates)
    return {
        rate_key(way, rate): latency(bench, way, rate, peak_seconds if rate == top else seconds)
        for rate in rates
        for way in WAYS
    }


def ceiling(bench: Bench, measured: dict, ladder: list[float], seconds: float) -> dict:
    """The highest rate that holds p99 < 1 s both ways with every issue in step, among the
    rates measured and the rungs of `ladder` below the top one (each rung run when the
    search reaches it, from the top down). The rows of the rungs run are kept."""

    def holds(rows) -> bool:
        rows = list(rows)
        return (
            len(rows) == 2
            and all(r["p99_ms"] is not None and r["p99_ms"] < 1000 for r in rows)
            and all(r.get("converged", r.get("issues")) == r.get("issues") for r in rows)
        )

    def at(rows: dict, rate: float) -> list[dict]:
        return [r for r in rows.values() if r["rate_per_s"] == rate]

    top = max(r["rate_per_s"] for r in measured.values())
    tried: dict = {}
    # Every candidate below the top, highest first: the ladder's rungs (run when reached)
    # and the lower rates already measured.
    candidates = sorted(
        {r for r in ladder if r < top} | {r["rate_per_s"] for r in measured.values()}, reverse=True
    )
    for rate in candidates:
        rows = at(measured, rate)
        if not rows:
            run = {rate_key(way, rate): latency(bench, way, rate, seconds) for way in WAYS}
            tried.update(run)
            rows = list(run.values())
        if holds(rows):
            return {"rate_per_s": rate, "tried": sorted(tried), "rows": tried}
    return {"rate_per_s": None, "tried": sorted(tried), "rows": tried}


def drain(rows: list[dict]) -> dict:
    """The scaling rows under stable keys: `processes_1`, `processes_2`..."""
    return {
        f"processes_{r['workers']}": {
            "per_s": r["per_second"],
            "deliveries": r["deliveries"],
            "seconds": r["seconds"],
            "peak_worker_rss_mib": r["peak_worker_rss_mib"],
        }
        for r in rows
    }


SCENARIOS = (
    "ingest",
    "calls",
    "latency",
    "burst",
    "drain",
    "profile",
    "fairness",
    "metrics",
    "refusals",
)


def measure(stack: Stack, args: argparse.Namespace) -> dict:
    """Every scenario (or those of `--only`), in order, on a started stack."""
    quick = args.quick
    wanted = set(args.only.split(",")) if args.only else set(SCENARIOS)
    rates = [2.0] if quick else [float(r) for r in args.rates.split(",")]
    seconds = 4.0 if quick else args.seconds
    scale = [1, 2] if quick else [int(w) for w in args.scaling.split(",")]
    bench = Bench(stack)
    bench.ingest_rounds = 3 if quick else 5
    targets = bench.linked_issues(5 if quick else 50)
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": ("quick" if quick else "full") + (f" (only {args.only})" if args.only else ""),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
    }
    if "ingest" in wanted:
        results["ingest"] = ingest(bench, 2 if quick else 8, 2 if quick else 10)
    if "calls" in wanted:
        results["calls_per_change"] = calls_per_change(bench)
    if "latency" in wanted:
        peak = seconds if quick else args.peak_seconds
        results["latency"] = latencies(bench, rates, seconds, peak)
        if not quick and args.ladder:
            ladder = [float(r) for r in args.ladder.split(",")]
            results["latency_ceiling"] = ceiling(bench, results["latency"], ladder, seconds)
    if "burst" in wanted:
        results["burst"] = burst(bench, 200 if quick else args.burst, targets)
    if "drain" in wanted:
        results["scaling"] = scaling(bench, scale, 100 if quick else 1000, targets)
        results["drain"] = drain(results["scaling"])
    if "profile" in wanted:
        results["profile"] = profile(bench, 30 if quick else 300, targets, stack.results)
    if "fairness" in wanted:
        # After the figures above: it adds a second organization, which every later local
        # change would reach (the refusals below only time the endpoint).
        flood = 200 if quick else args.flood
        results["fairness"] = fairness(bench, flood, 5 if quick else 20, targets)
    if "metrics" in wanted:
        # Before the refusals, which may throttle the partner site's address.
        results["metrics"] = metrics_agree(bench, 10 if quick else 60, targets)
    if "refusals" in wanted:
        # Last, so that the figures above are measured exactly as before; it may throttle
        # the bench's address, which would refuse the fairness scenario's flood.
        results["refusals"] = refusals(bench, 3 if quick else 7)
    return results


def keep_run(results: dict, folder: Path) -> Path:
    """The run's key figures in `folder/runs/` (the ranges over runs come from there)."""
    figures = {key: lookup(results, key) for key, _ in KEY_FIGURES}
    figures["latency"] = results.get("latency")
    figures["drain"] = results.get("drain")
    kept = {"when": results["when"], "mode": results["mode"], "machine": results["machine"]}
    path = folder / "runs" / f"{results['when'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept | {"figures": figures}, indent=2) + "\n")
    return path


def main() -> int:
    args = arguments()
    # CI's smoke run keeps its own files; the full run's figures stay put.
    results_dir = RESULTS / "quick" if args.quick else RESULTS
    stack = Stack(workers=args.workers, results=results_dir)
    try:
        stack.start()
        results = measure(stack, args)
    finally:
        stack.stop()
    results_dir.mkdir(parents=True, exist_ok=True)
    kept = keep_run(results, results_dir)
    if args.only:  # a partial run: its figures go to runs/ alone, latest.* stay whole
        print(json.dumps(json.loads(kept.read_text())["figures"], indent=2))
        return 0
    (results_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / "latest.md").write_text(markdown(results))
    plots(results, results_dir)
    print(markdown(results))
    # Correctness, not speed, fails a run: every accepted delivery processed exactly once.
    figures = results["burst"]
    return 1 if figures["lost"] or figures["duplicated"] or not figures["processed"] else 0


if __name__ == "__main__":
    sys.exit(main())
