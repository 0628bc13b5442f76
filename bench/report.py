"""The report of a run: latest.md's text and the plots (ingest, burst drain, scaling)."""

from __future__ import annotations

import os
from pathlib import Path


def ingest_section(results: dict) -> list[str]:
    ing = results["ingest"]
    return [
        "## Ingest: the partner webhook endpoint (wrk, 2 threads, 16 connections, loopback)",
        "",
        "| endpoint | req/s | p50 ms at 200/s | p99 ms at 200/s |",
        "|---|---|---|---|",
        f"| incoming webhook (secret + X-Hub-Signature, dedupe, store, enqueue) | "
        f"{ing['endpoint_rps']} | {ing['at_200_per_s']['endpoint']['p50_ms']} | "
        f"{ing['at_200_per_s']['endpoint']['p99_ms']} |",
        f"| baseline (insert one row) | {ing['baseline_rps']} | "
        f"{ing['at_200_per_s']['baseline']['p50_ms']} | "
        f"{ing['at_200_per_s']['baseline']['p99_ms']} |",
        "",
        f"Endpoint throughput = **{ing['ratio']:.0%}** of the baseline's (target: at least 70%);"
        " median of alternating rounds, each round's ratio: "
        + ", ".join(f"{r['ratio']:.0%}" for r in ing["rounds"])
        + ".",
        "",
    ]


def calls_section(results: dict) -> list[str]:
    lines = [
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
    return lines


def latency_section(results: dict) -> list[str]:
    lines = [
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
    return lines


def burst_section(results: dict) -> list[str]:
    b = results["burst"]
    return [
        "",
        f"## Burst: {b['posted']} deliveries posted as fast as possible (32 clients)",
        "",
        "| accepted | stored | processed | lost | duplicated | posting s | drain s "
        "| peak worker RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
        f"| {b['accepted']} | {b['stored']} | {b['processed']} | {b['lost']} | "
        f"{b['duplicated']} | {b['post_seconds']} | {b['drain_seconds']} | "
        f"{b['peak_worker_rss_mib']} |",
        "",
    ]


def scaling_section(results: dict) -> list[str]:
    lines = [
        "## Scaling: drain rate per worker process count",
        "",
        "| worker processes | deliveries | seconds | deliveries/s | vs 1 process | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    base = results["scaling"][0]["per_second"] if results["scaling"] else 1
    for row in results["scaling"]:
        lines.append(
            f"| {row['workers']} | {row['deliveries']} | {row['seconds']} | "
            f"{row['per_second']} | {row['per_second'] / base:.2f}x | "
            f"{row['peak_worker_rss_mib']} |"
        )
    return lines


def markdown(results: dict) -> str:
    lines = [
        f"# Benchmark results ({results['when']})",
        "",
        f"Machine: {results['machine']}. Mode: {results['mode']}.",
        "",
        *ingest_section(results),
        *calls_section(results),
        *latency_section(results),
        *burst_section(results),
        *scaling_section(results),
        "",
        "Profiles of the two hot paths: `bench/results/profile-ingest.txt`, "
        "`bench/results/profile-sync.txt`. Plots: `bench/results/*.png`.",
    ]
    return "\n".join(lines) + "\n"


def plots(results: dict, folder: Path) -> None:
    """burst-drain.png, scaling.png and ingest.png in `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [p[0] for p in results["burst"]["backlog"]]
    ys = [p[1] for p in results["burst"]["backlog"]]
    ax.plot(xs, ys)
    ax.set_xlabel("seconds after the burst was posted")
    ax.set_ylabel("deliveries not yet final")
    ax.set_title(f"Burst of {results['burst']['posted']}: backlog draining")
    fig.tight_layout()
    fig.savefig(folder / "burst-drain.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    rows = results["scaling"]
    ax.bar([str(r["workers"]) for r in rows], [r["per_second"] for r in rows])
    ax.set_xlabel("worker processes")
    ax.set_ylabel("deliveries drained per second")
    ax.set_title(f"Drain rate ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(folder / "scaling.png", dpi=100)
    plt.close(fig)

    ing = results["ingest"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(["incoming webhook", "baseline insert"], [ing["endpoint_rps"], ing["baseline_rps"]])
    ax.set_ylabel("requests per second")
    ax.set_title(f"Ingest: {ing['ratio']:.0%} of the baseline")
    fig.tight_layout()
    fig.savefig(folder / "ingest.png", dpi=100)
    plt.close(fig)
