"""Fault injection settings, changed at run time over ``/_sim/faults``.

Count settings (``*_count``) hit the next N matching calls or deliveries; ratio settings
(``*_ratio``, 0..1) hit that share at random (seedable with ``seed``). Everything is off by
default.
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Any

DEFAULTS: dict[str, Any] = {
    # REST side
    "latency_ms": 0,
    "rate_limit_count": 0,
    "rate_limit_ratio": 0.0,
    "rate_limit_rps": 0,  # token bucket per user: sustained requests/second (burst = 2x)
    "issue_write_rps": 0,  # token bucket per issue for writes (Cloud's per-issue write limit)
    "retry_after": 1,
    "error_count": 0,
    "error_ratio": 0.0,
    "error_statuses": [500, 503],
    "response_lost_count": 0,
    "response_lost_ratio": 0.0,
    "slow_response_count": 0,  # the call is processed, then the answer waits slow_response_ms
    "slow_response_ratio": 0.0,
    "slow_response_ms": 5000,
    "path_pattern": None,
    # Cloud's search/jql is eventually consistent: issues changed in the last N ms are not
    # found by a search yet (they are readable by key).
    "search_lag_ms": 0,
    # webhook side
    "webhook_drop_count": 0,
    "webhook_drop_ratio": 0.0,
    "webhook_duplicate_count": 0,
    "webhook_duplicate_ratio": 0.0,
    "webhook_delay_ms": 0,  # added to every delivery
    "webhook_late_count": 0,  # these deliveries get webhook_late_ms more
    "webhook_late_ratio": 0.0,
    "webhook_late_ms": 2000,
    "webhook_reorder_window": 0,
    "seed": None,
}


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cfg: dict[str, Any] = dict(DEFAULTS)
        self.rng = random.Random()  # noqa: S311 - fault dice, not crypto
        self.injected: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    def update(self, changes: dict) -> dict:
        if not isinstance(changes, dict):
            raise ValueError("faults must be a JSON object")
        unknown = sorted(set(changes) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        with self.lock:
            for k, v in changes.items():
                default = DEFAULTS[k]
                if v is None:
                    v = default
                elif isinstance(default, bool) or k in ("path_pattern", "error_statuses", "seed"):
                    pass
                elif isinstance(default, int):
                    v = int(v)
                elif isinstance(default, float):
                    v = float(v)
                    if not 0.0 <= v <= 1.0:
                        raise ValueError(f"{k} must be between 0 and 1")
                if k == "path_pattern" and v:
                    re.compile(v)
                if k == "error_statuses":
                    v = [int(x) for x in (v if isinstance(v, list) else [v])]
                self.cfg[k] = v
                if k == "seed":
                    self.rng.seed(v)
            return dict(self.cfg)

    def clear(self) -> None:
        with self.lock:
            self.cfg = dict(DEFAULTS)
            self.injected = {}
            self._buckets = {}

    def snapshot(self) -> dict:
        with self.lock:
            return {**self.cfg, "injected": dict(self.injected)}

    def get(self, key: str) -> Any:
        with self.lock:
            return self.cfg[key]

    def applies_to(self, path: str) -> bool:
        pat = self.get("path_pattern")
        return not pat or re.search(pat, path) is not None

    def take(self, name: str) -> bool:
        """Consume one count of ``name`` or roll its ratio; True when the fault fires."""
        with self.lock:
            count_key, ratio_key = f"{name}_count", f"{name}_ratio"
            hit = False
            if self.cfg.get(count_key, 0) > 0:
                self.cfg[count_key] -= 1
                hit = True
            elif self.cfg.get(ratio_key, 0.0) > 0 and self.rng.random() < self.cfg[ratio_key]:
                hit = True
            if hit:
                self.injected[name] = self.injected.get(name, 0) + 1
            return hit

    def bucket_take(self, who: str, setting: str = "rate_limit_rps") -> bool:
        """Token bucket for ``setting`` (requests/second); False when ``who`` is over it."""
        with self.lock:
            rps = self.cfg[setting]
            who = f"{setting}:{who}"
            if rps <= 0:
                return True
            now = time.monotonic()
            tokens, last = self._buckets.get(who, (2.0 * rps, now))
            tokens = min(2.0 * rps, tokens + (now - last) * rps)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                self.injected["rate_limit"] = self.injected.get("rate_limit", 0) + 1
                return False
            self._buckets[who] = (tokens - 1.0, now)
            return True

    def choice(self, values: list) -> Any:
        with self.lock:
            return self.rng.choice(values)
