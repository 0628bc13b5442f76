"""Command lines of the processes the demo, the benchmarks and the system tests start."""

from __future__ import annotations

import sys
from collections.abc import Iterable

PYTHON = sys.executable


def jirasim_command(
    *, port: int, flavor: str, project: str, users: Iterable[tuple[str, str]], retry_base: float
) -> list[str]:
    command = [
        PYTHON,
        "-m",
        "jirasim",
        "--port",
        str(port),
        "--flavor",
        flavor,
        "--project",
        project,
        "--webhook-retry-base",
        str(retry_base),
    ]
    for email, token in users:
        command += ["--user", f"{email}:{token}"]
    return command


def worker_command(*, concurrency: int, loglevel: str = "INFO") -> list[str]:
    return [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "syncapp",
        "worker",
        "-l",
        loglevel,
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
    ]


def beat_command(*, schedule: str, loglevel: str = "INFO") -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "syncapp", "beat", "-l", loglevel, "--schedule", schedule]
