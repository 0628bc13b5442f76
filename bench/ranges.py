"""The range of each key figure over the kept runs (`bench/results/runs/*.json`, written by
every `make bench`, whole or `--only`): what the README's performance section quotes.

Usage: python bench/ranges.py [--since 2026-11-26]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench")]
from report import KEY_FIGURES  # noqa: E402

RUNS = REPO / "bench" / "results" / "runs"


def ranges(since: str = "") -> list[tuple[str, str, int, object, object]]:
    runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    runs = [r for r in runs if r["when"] >= since and not r["mode"].startswith("quick")]
    rows = []
    for key, label in KEY_FIGURES:
        values = [r["figures"].get(key) for r in runs]
        values = [v for v in values if isinstance(v, int | float)]
        if values:
            rows.append((key, label, len(values), min(values), max(values)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", default="", help="only runs from this ISO date on")
    args = parser.parse_args()
    print("| key | figure | runs | lowest | highest |")
    print("|---|---|---|---|---|")
    for key, label, n, low, high in ranges(args.since):
        print(f"| `{key}` | {label} | {n} | {low} | {high} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
