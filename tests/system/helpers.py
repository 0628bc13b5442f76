"""The environment of the service's own processes in tests (devtools.supervisor runs them)."""

import os
import re
from pathlib import Path

# Set by `make test` or the developer's shell, and not there on a fresh machine.
EMBEDDED_UNSET = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "PUBLIC_BASE_URL",
    "WEB_PORT",
    "MFLAGS",
)


def embedded_env(var_dir: Path, port: int) -> dict[str, str]:
    """The environment of a fresh machine: no database or broker configured."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in EMBEDDED_UNSET and not k.startswith(("PYTEST", "MAKE"))
    }
    env.update(VAR_DIR=str(var_dir), WEB_PORT=str(port), PYTHONUNBUFFERED="1")
    return env


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


# The timings of the workers the system tests start: retries, sweeps and leases in seconds,
# not minutes, so a test waits for them briefly (never asserted: they only shorten waits).
FAST_TIMINGS = {
    "SYNC_RETRY_BASE_SECONDS": "0.3",
    "SYNC_RETRY_MAX_SECONDS": "5",
    "SYNC_SWEEP_SECONDS": "1",
    "SYNC_PENDING_STALE_SECONDS": "3",
    "SYNC_PROCESSING_STALE_SECONDS": "4",
    "SYNC_LEASE_SECONDS": "4",
    "SYNC_CREATE_SETTLE_SECONDS": "1",
    "SYNC_RELAY_STANDBY_SECONDS": "0.5",
}
