"""Where the CPU went during a scenario: our processes (web, worker, beat), the simulators,
PostgreSQL's backends for the bench database, Redis, the bench's own driver, and the rest of
the machine. Read from /proc (Linux): each process's user + system ticks, grouped by the
stack's process groups (each started process leads a group of its own)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = ("web", "worker", "beat", "simulators", "postgres", "redis", "bench driver")
OURS = ("web", "worker", "beat")


def _stat(pid: str) -> tuple[int, int, str, int] | None:
    """(process group, ticks used, command name, ticks of its ended children that it waited
    for) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is the state: pgrp is stat's 5th field, utime/stime its 14th/15th,
    # cutime/cstime (its children's, once they ended and it waited for them) its 16th/17th.
    return (
        int(fields[2]),
        int(fields[11]) + int(fields[12]),
        name,
        int(fields[13]) + int(fields[14]),
    )


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _machine_ticks() -> tuple[int, int]:
    """Busy ticks of the whole machine (every core), from /proc/stat's first line, and those
    of them spent serving interrupts (irq, softirq: the loopback's packets among them)."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in parts[:8])
    return user + nice + system + irq + softirq + steal, irq + softirq


def snapshot(stack) -> dict:
    """Ticks used so far by each process of each group, and the machine's busy ticks."""
    groups = {}
    leaders = set()  # the processes the stack started (the worker's: its consumer)
    for process in stack.processes.processes:
        leaders.add(process.pid)
        name = process.name
        group = (
            "web"
            if name.startswith("gunicorn")
            else "worker"
            if name.startswith("worker")
            else "beat"
            if name.startswith("beat")
            else "simulators"
            if name.startswith("jirasim")
            else None
        )
        if group:
            groups[process.pid] = group
    database = stack.db_url.rsplit("/", 1)[-1]
    me = os.getpid()
    per_process: dict[int, tuple[str, int]] = {}
    worker_consumer = 0
    postgres_ended = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        stat = _stat(pid)
        if stat is None:
            continue
        pgrp, used, name, ended = stat
        group = None
        if int(pid) == me:
            group = "bench driver"
        elif pgrp in groups:
            group = groups[pgrp]
        elif name.startswith("redis-server"):
            group = "redis"
        elif name == "postgres" and f" {database} " in _cmdline(pid):
            group = "postgres"
        # The rest by command name, to say what "other" was (a PostgreSQL process serving
        # another database or its own background work, the kernel's threads...).
        if group == "worker" and int(pid) in leaders:
            worker_consumer = used
        elif name == "postgres" and " -D " in _cmdline(pid):
            # The postmaster: what its ended children used (backends whose connection
            # closed, of every database; autovacuum workers).
            postgres_ended = ended
        per_process[int(pid)] = (group or f"other:{name}", used)
    machine, interrupts = _machine_ticks()
    return {
        "processes": per_process,
        "machine": machine,
        "interrupts": interrupts,
        "worker_consumer": worker_consumer,
        "postgres_ended": postgres_ended,
    }


def split(before: dict, after: dict, seconds: float) -> dict:
    """CPU seconds per group over `seconds` of wall time, and each group's share of what the
    machine's cores could give (`cores x seconds`); `other` is the rest of the machine.
    Per process: a process started in between counts whole (database connections come and
    go), one that ended in between counts nothing."""
    capacity = (os.cpu_count() or 1) * seconds
    ticks = dict.fromkeys(GROUPS, 0)
    rest: dict[str, int] = {}
    for pid, (group, used) in after["processes"].items():
        earlier = before["processes"].get(pid)
        delta = used - earlier[1] if earlier and earlier[0] == group else used
        if group in ticks:
            ticks[group] += delta
        else:
            name = group.removeprefix("other:")
            rest[name] = rest.get(name, 0) + delta
    used = {g: max(0, t) / TICK for g, t in ticks.items()}
    machine = max(0, after["machine"] - before["machine"]) / TICK
    used["other"] = max(0.0, machine - sum(used.values()))
    ours = sum(used[g] for g in OURS)
    # "other", broken down: interrupts, the machine's other processes (the busiest by name),
    # and what no living process accounts for (processes that ended in between).
    interrupts = max(0, after["interrupts"] - before["interrupts"]) / TICK
    named = {n: t / TICK for n, t in sorted(rest.items(), key=lambda kv: -kv[1]) if t > 0}
    postgres_ended = max(0, after["postgres_ended"] - before["postgres_ended"]) / TICK
    ended = max(0.0, used["other"] - interrupts - sum(named.values()) - postgres_ended)
    consumer = max(0, after["worker_consumer"] - before["worker_consumer"]) / TICK
    return {
        "seconds": round(seconds, 1),
        "cores": os.cpu_count(),
        "cpu_s": {g: round(v, 1) for g, v in used.items()},
        "share": {g: round(v / capacity, 3) for g, v in used.items()},
        "ours_share": round(ours / capacity, 3),
        "simulators_share": round(used["simulators"] / capacity, 3),
        "machine_busy": round(machine / capacity, 3),
        "other_s": {
            "interrupts": round(interrupts, 1),
            "processes": {n: round(v, 1) for n, v in list(named.items())[:8]},
            "processes_all": round(sum(named.values()), 1),
            # PostgreSQL processes that ended in between, of every database.
            "postgres_ended": round(postgres_ended, 1),
            "unaccounted": round(ended, 1),
        },
        # The worker's share: its consumer (the main process: the broker, the relay, the
        # pool's dispatch) and its pool processes (the tasks).
        "worker_split": {
            "consumer": round(consumer, 1),
            "pool": round(max(0.0, used["worker"] - consumer), 1),
        },
    }
