"""Fault injection on the REST path: latency, rate limits, injected errors, lost and slow
answers, as configured in :class:`jirasim.faults.Faults`."""

from __future__ import annotations

import time

from .clock import fmt_ts
from .request import WRITE_METHODS, Request, Response


class FaultGate:
    """Applies ``self.faults`` around REST handlers (mixed into :class:`jirasim.app.App`)."""

    def _faults_before(self, req: Request, call: dict) -> Response | None:
        """Latency, then a 429 (tenant or per-issue write bucket) or an injected error."""
        latency = self.faults.get("latency_ms")
        if latency:
            time.sleep(latency / 1000.0)
        who = req.user["accountId"] if req.user else "anonymous"
        reason = "jira-quota-tenant-based"
        limited = self.faults.take("rate_limit") or not self.faults.bucket_take(who)
        issue_key = req.params.get("key")
        if (
            not limited
            and issue_key
            and req.method in WRITE_METHODS
            and "/issue/" in req.path
            and not self.faults.bucket_take(issue_key.upper(), "issue_write_rps")
        ):
            limited, reason = True, "jira-per-issue-on-write"
        if limited:
            call["fault"] = "rate_limit"
            return self._rate_limited(reason)
        if self.faults.take("error"):
            status = self.faults.choice(self.faults.get("error_statuses"))
            call["fault"] = f"error_{status}"
            hdrs = (
                {"Retry-After": str(int(self.faults.get("retry_after")))} if status == 503 else {}
            )
            return Response(
                status,
                {"errorMessages": ["Internal server error"], "errors": {}},
                hdrs,
            )
        return None

    def _rate_limited(self, reason: str) -> Response:
        ra = int(self.faults.get("retry_after"))
        reset = fmt_ts(int((time.time() + ra) * 1000))
        return Response(
            429,
            {"errorMessages": ["Rate limit exceeded."], "errors": {}},
            {
                "Retry-After": str(ra),
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset,
                "RateLimit-Reason": reason,
            },
        )

    def _faults_after(self, method: str, path: str, resp: Response, call: dict) -> bool:
        """A lost answer to a successful write (returns True), or a slow answer."""
        if (
            method in WRITE_METHODS
            and resp.status < 400
            and call.get("fault") is None
            and path.startswith("/rest/api")
            and self.faults.applies_to(path)
            and self.faults.take("response_lost")
        ):
            call["fault"] = "response_lost"
            return True
        if (
            call.get("fault") is None
            and path.startswith("/rest/")
            and self.faults.applies_to(path)
            and self.faults.take("slow_response")
        ):
            call["fault"] = "slow_response"
            time.sleep(self.faults.get("slow_response_ms") / 1000.0)
        return False
