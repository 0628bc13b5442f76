"""Load tools for the scenarios: Jira-shaped partner deliveries and their signature, wrk for
ingest throughput, open-loop latency at a fixed rate, many posts at once (the burst), and the
resident memory of a worker and its pool."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

WRK_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tid
end
request = function()
  counter = counter + 1
  local id = string.format("%s-%d-%d", PREFIX, thread_id, counter)
  wrk.headers["X-Atlassian-Webhook-Identifier"] = id
  return wrk.format("POST", nil, wrk.headers, BODY)
end
"""


def loopback_session() -> requests.Session:
    """A session for the stack on this machine: no proxy look-up in the environment on each
    request (requests re-reads it per call when `trust_env` is on: ~2 ms of the driver's CPU)."""
    session = requests.Session()
    session.trust_env = False
    # The latency driver calls from 32 threads: keep a connection for each (the default
    # pool of 10 would discard and reopen connections under load).
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    return session


def partner_payload(issue_id: str, issue_key: str, summary: str) -> dict:
    """A partner's `jira:issue_updated` webhook body, in Jira's shape."""
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_updated",
        "user": {"accountId": "bench", "displayName": "Bench"},
        "issue": {
            "id": issue_id,
            "key": issue_key,
            "fields": {"project": {"key": "REM"}, "summary": summary, "labels": []},
        },
        "changelog": {
            "id": "1",
            "items": [
                {
                    "field": "labels",
                    "fieldtype": "jira",
                    "fieldId": "labels",
                    "from": None,
                    "fromString": "",
                    "to": None,
                    "toString": "",
                }
            ],
        },
    }


def signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wrk(url: str, body: bytes, headers: dict, seconds: float, connections: int = 16) -> dict:
    """Requests per second from wrk (2 threads) posting `body`, each request with its own
    X-Atlassian-Webhook-Identifier (the signature covers the body only), so that every one is
    a new delivery, not a repeat answered from the stored row."""
    lua = WRK_SCRIPT.replace("PREFIX", json.dumps(uuid.uuid4().hex[:8])).replace(
        "BODY", json.dumps(body.decode())
    )
    for name, value in headers.items():
        lua = f'wrk.headers["{name}"] = {json.dumps(value)}\n' + lua
    lua = 'wrk.method = "POST"\n' + lua
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    out = subprocess.run(  # noqa: S603 - wrk from the system's packages
        [
            "/usr/bin/wrk",
            "-t2",
            f"-c{connections}",
            f"-d{max(1, int(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests_done = re.search(r"(\d+) requests in", out)
    return {
        "rps": rps,
        "requests": int(requests_done.group(1)) if requests_done else 0,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "raw": out,
    }


def fixed_rate(url: str, make_request, rate: float, seconds: float) -> dict:
    """Open-loop load at `rate`/s; latency from the scheduled send time (no coordinated
    omission), so a slow server shows as latency, not as a lower rate."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    local = threading.local()
    start = time.monotonic() + 0.2

    def one(n: int) -> None:
        nonlocal errors
        session = getattr(local, "session", None) or loopback_session()
        local.session = session
        scheduled = start + n / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        data, headers = make_request(n)
        try:
            ok = session.post(url, data=data, headers=headers, timeout=10).status_code < 300
        except requests.RequestException:
            ok = False
        with lock:
            latencies.append((time.monotonic() - scheduled) * 1000)
            errors += not ok

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, range(total)))
    latencies.sort()
    return {
        "rate_per_s": rate,
        "requests": total,
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
    }


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (a Celery worker and its pool)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total


def post_many(url: str, bodies: list[tuple[bytes, dict]], threads: int = 32) -> list[int]:
    local = threading.local()

    def one(item):
        session = getattr(local, "session", None) or loopback_session()
        local.session = session
        body, headers = item
        try:
            return session.post(url, data=body, headers=headers, timeout=30).status_code
        except requests.RequestException:
            return 0

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, bodies))
