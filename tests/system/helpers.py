"""Running the service's own processes in tests."""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """A process group whose output is collected, stopped with Ctrl-C (SIGINT)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
        self.popen = subprocess.Popen(  # noqa: S603
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # A job started in the background inherits "ignore SIGINT"; a terminal's does not.
            preexec_fn=_default_sigint,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not seen; output:\n{self.output[-5000:]}")

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C to the whole group, as a terminal would; SIGKILL if it does not stop."""
        try:
            os.killpg(self.popen.pid, signal.SIGINT)
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
            raise
        finally:
            self._reader.join(5)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_http(url: str, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {last}")


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
