"""Metrics: `/metrics`, scraped over HTTP from the running stack, against the dashboard's
figures (`/api/status/`, same server) and against the Jira sites' own logs of the calls our
sync account made to them.

Between two scrapes, Alice edits linked issues at both sites (the partner answers the sync's
first call with a 429), and the sync settles. Then every figure the two views share must be
equal: deliveries per status, sync results, the latency histogram per direction, the backlog;
and the Jira calls and 429s `/metrics` counted for each site in that window must be the
calls and 429s the site logged for our account. A scrape's time is reported too, with the
database holding every row the run left (the stack runs with METRICS_CACHE_SECONDS=0, so
every scrape reads it).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import requests
from harness import Bench
from stack import METRICS_TOKEN, SYNC_LOCAL, SYNC_PARTNER


def _scrape(bench: Bench) -> tuple[dict, float]:
    """The samples of one scrape, {(name, labels): value}, and its time in ms."""
    from prometheus_client.parser import text_string_to_metric_families

    started = time.perf_counter()
    response = requests.get(
        f"{bench.stack.base}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=60,
    )
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return samples, elapsed


def _summed(samples: dict, name: str, label: str) -> dict[str, float]:
    """`name`'s samples summed per value of `label` (the other labels summed over)."""
    out: dict[str, float] = defaultdict(float)
    for (sample, labels), value in samples.items():
        if sample == name:
            out[dict(labels).get(label, "")] += value
    return dict(out)


def _site_log(site: str, user: str, since: int) -> tuple[int, int, int]:
    """(calls, 429s) `user` made to `site` after its call number `since`; the newest number."""
    log = requests.get(f"{site}/_sim/calls?since={since}", timeout=30).json()
    mine = [c for c in log["calls"] if c.get("user") == user]
    return len(mine), sum(1 for c in mine if c["status"] == 429), log["total"]


def _dashboard(bench: Bench, user: tuple[str, str]) -> dict:
    response = requests.get(f"{bench.stack.base}/api/status/", auth=user, timeout=60)
    response.raise_for_status()
    return response.json()


def metrics_agree(bench: Bench, changes: int, targets) -> dict:
    from django.contrib.auth import get_user_model

    from sync.models import IssueLink

    staff = ("bench-staff", "bench-staff-password-1")
    if not get_user_model().objects.filter(username=staff[0]).exists():
        get_user_model().objects.create_superuser(staff[0], "staff@bench.example", staff[1])
    sites = {
        "local": (bench.stack.local, SYNC_LOCAL[0]),
        "partner": (bench.stack.partner, SYNC_PARTNER[0]),
    }
    bench.settle()
    before, _ = _scrape(bench)
    marks = {name: _site_log(site, user, 10**12)[2] for name, (site, user) in sites.items()}
    # The partner answers the next call with a 429 (Retry-After 0): the sync's, for the
    # local change right after (Alice's calls go to the local site meanwhile).
    requests.post(
        f"{bench.stack.partner}/_sim/faults",
        json={"rate_limit_count": 1, "retry_after": 0},
        timeout=10,
    ).raise_for_status()
    remote_keys = [key for _id, key in targets]
    local_keys = list(
        IssueLink.objects.filter(remote_issue_key__in=remote_keys).values_list(
            "local_issue_key", flat=True
        )
    )
    bench.api(
        bench.stack.local, "PUT", f"/issue/{local_keys[0]}", json={"fields": {"summary": "429"}}
    )
    bench.settle(120)
    for n in range(changes):
        site, keys = (
            (bench.stack.local, local_keys) if n % 2 == 0 else (bench.stack.partner, remote_keys)
        )
        bench.api(
            site, "PUT", f"/issue/{keys[n % len(keys)]}", json={"fields": {"summary": f"m {n}"}}
        )
        time.sleep(0.05)
    bench.settle(300)
    after, _ = _scrape(bench)
    dashboard = _dashboard(bench, staff)
    timings = [_scrape(bench)[1] for _ in range(5)]

    checks: dict[str, dict] = {}

    def check(name: str, metrics_value, dashboard_value) -> None:
        checks[name] = {
            "metrics": metrics_value,
            "other": dashboard_value,
            "agree": metrics_value == dashboard_value,
        }

    deliveries = _summed(after, "jirasync_deliveries", "status")
    check(
        "deliveries_by_status",
        {k: int(v) for k, v in sorted(deliveries.items()) if v},
        {k: v for k, v in sorted(dashboard["deliveries"].items()) if v},
    )
    results = _summed(after, "jirasync_sync_events", "result")
    check(
        "sync_results",
        {k: int(v) for k, v in sorted(results.items()) if v},
        {k: v for k, v in sorted(dashboard["results"].items()) if v},
    )
    depth = _summed(after, "jirasync_queue_depth", "status")
    check(
        "backlog",
        int(depth.get("pending", 0) + depth.get("processing", 0)),
        dashboard["backlog"],
    )
    for direction, found in sorted(dashboard["latency"].items()):
        labels = (("direction", direction),)
        check(
            f"latency_{direction}",
            {
                "count": int(after.get(("jirasync_sync_latency_seconds_gcount", labels), -1)),
                "sum_ms": round(
                    after.get(("jirasync_sync_latency_seconds_gsum", labels), -1) * 1000
                ),
                "buckets": {
                    str(round(float(dict(labels_)["le"]) * 1000)): int(value)
                    for (sample, labels_), value in after.items()
                    if sample == "jirasync_sync_latency_seconds_bucket"
                    and dict(labels_).get("direction") == direction
                    and dict(labels_)["le"] != "+Inf"
                },
            },
            {
                "count": found["count"],
                "sum_ms": found["sumMs"],
                "buckets": {str(b): n for b, n in found["buckets"].items()},
            },
        )
    for name, (site, user) in sites.items():
        calls, limited, _ = _site_log(site, user, marks[name])
        labels = (("site", site),)

        def delta(sample: str, labels=labels) -> int:
            return int(after.get((sample, labels), 0) - before.get((sample, labels), 0))

        check(
            f"jira_calls_{name}",
            {
                "calls": delta("jirasync_jira_calls_total"),
                "429": delta("jirasync_jira_rate_limited_total"),
            },
            {"calls": calls, "429": limited},
        )
    return {
        "agree": all(c["agree"] for c in checks.values()),
        "checks": checks,
        "changes": changes + 1,
        "scrape_ms": round(statistics.median(timings), 1),
        "scrape_ms_rounds": [round(t, 1) for t in timings],
        "samples": len(after),
        "deliveries_in_window": sum(dashboard["deliveries"].values()),
    }
