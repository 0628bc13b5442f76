"""One supervisor for the processes that the demo, the benchmarks and the system tests start.

Every process runs in a process group of its own (a new session): a terminal's Ctrl-C does
not reach it, and stopping it can stop its children too (a Celery pool, honcho's processes).
Its output goes to a log file, or is captured in memory when no file is given.

    with Supervisor(logs=Path("var/logs")) as processes:
        web = processes.start("web", [...], env=env)
        processes.wait_http("http://127.0.0.1:8000/healthz")
        worker = processes.start("worker", [...], env=env)
        worker.wait_for(r" ready\\.")
    # every process started is stopped here, the last started first
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


class ProcessError(RuntimeError):
    """A supervised process exited, or did not get ready in time."""


def _default_sigint() -> None:
    # A job started in the background inherits "ignore SIGINT"; a terminal's does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """One named process in its own process group, with its output in a file or in memory."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
        log: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log
        self.lines: list[str] = []
        self._log = open(log, "w") if log else None  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(  # noqa: S603 - our own commands
            args,
            cwd=cwd,
            env=dict(env) if env is not None else os.environ.copy(),
            stdout=self._log or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        self._reader = None
        if self._log is None:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        if self.log_path is None:
            return "".join(self.lines)
        return self.log_path.read_text() if self.log_path.exists() else ""

    def where(self) -> str:
        """Where to look when it fails: its log file, or the end of its output."""
        if self.log_path is not None:
            return f"see {self.log_path}"
        return f"output:\n{self.output[-5000:]}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def group_alive(self) -> bool:
        """Whether any process of its group is still there (the process or a child)."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        """The first match of `pattern` in its output, once it appears."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if not self.running():
                break
            time.sleep(0.1)
        state = "exited" if not self.running() else "still running"
        raise ProcessError(f"{self.name}: {pattern!r} not seen ({state}); {self.where()}")

    def send(self, sig: int, *, group: bool = True) -> None:
        """A signal to the whole group, or to the main process only."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.pid, sig)
            else:
                self.popen.send_signal(sig)

    def suspend(self) -> None:
        """Pause (SIGSTOP) the process and its children."""
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        """Resume (SIGCONT) the process and its children."""
        self.send(signal.SIGCONT)

    def wait(self, timeout: float) -> bool:
        """Whether it exited within `timeout`; if not, its group is killed."""
        try:
            self.popen.wait(max(0.1, timeout))
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def terminate(self, timeout: float = 15, *, group: bool = True) -> bool:
        """SIGTERM, then SIGKILL to the group after `timeout`; whether it stopped in time.

        `group=False` signals the main process only (a Celery worker stops its own pool).
        """
        if not self.running():
            self.close()
            return True
        self.send(signal.SIGTERM, group=group)
        stopped = self.wait(timeout)
        self.close()
        return stopped

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C (SIGINT) to the whole group, as a terminal would; its exit code.

        Raises subprocess.TimeoutExpired, after a SIGKILL to the group, if it does not stop.
        """
        self.send(signal.SIGINT)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            self.close()

    def kill(self) -> None:
        """SIGKILL the process and its children at once (no clean shutdown)."""
        self.send(signal.SIGKILL)
        self.popen.wait(10)
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self._log is not None:
            self._log.close()


class Supervisor:
    """Starts named processes and stops them all together: a context manager.

    Output goes to `logs/<name>.log` when `logs` is given, else it is captured in memory.
    `report` is told about a process that had to be killed.
    """

    def __init__(
        self,
        logs: Path | None = None,
        *,
        cwd: Path = REPO,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.logs = logs
        self.cwd = cwd
        self.report = report or (lambda _text: None)
        self.processes: list[Process] = []
        self.stopping = False

    def start(
        self,
        name: str,
        args: list[str],
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
    ) -> Process:
        if self.stopping:
            raise ProcessError("stopping")
        if log is None and self.logs is not None:
            log = self.logs / f"{name}.log"
        process = Process(name, args, env=env, cwd=self.cwd, log=log)
        self.processes.append(process)
        return process

    def wait_http(self, url: str, timeout: float = 60) -> requests.Response:
        """`wait_http`, failing early if any process started here has exited."""
        return wait_http(url, timeout, processes=self.processes)

    def stop(self, timeout: float = 15, *, group: bool = True) -> list[Process]:
        """SIGTERM every running process, the last started first; SIGKILL the groups that do
        not stop within `timeout` (in all). Safe to call again, and from a signal handler.
        Returns the processes it stopped."""
        self.stopping = True
        running = [p for p in reversed(self.processes) if p.running()]
        for process in running:
            process.send(signal.SIGTERM, group=group)
        deadline = time.monotonic() + timeout
        for process in running:
            if not process.wait(deadline - time.monotonic()):
                self.report(f"  {process.name} did not stop in time: killed")
        for process in self.processes:
            process.close()
        return running

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(
    url: str, timeout: float = 60, *, processes: Iterable[Process] = ()
) -> requests.Response:
    """The first answer below 500 from `url`; fails early if one of `processes` exits."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code < 500:
                return response
            last = response.status_code
        except (requests.ConnectionError, requests.Timeout) as exc:  # not up, or still loading
            last = exc
        for process in processes:
            if not process.running():
                raise ProcessError(f"{process.name} exited; {process.where()}")
        time.sleep(0.2)
    raise ProcessError(f"{url} did not answer in {timeout} s: {last}")
