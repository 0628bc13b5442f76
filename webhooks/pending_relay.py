"""The relay of pending deliveries (PostgreSQL, SYNC_RELAY): the web request only stores a
delivery; a trigger (migration 0003) announces each row stored as pending with a NOTIFY at
commit, and a thread of a worker's main process sends it to the queue (`delivery_send`).

One relay per database sends: the one holding a session-level advisory lock on its own
connection (not Django's). The others stand by and try again every SYNC_RELAY_STANDBY_SECONDS,
so a dead relay's place is taken. A notification sent while no relay listens is lost: the
relay that takes over sends the pending rows of the last SYNC_PENDING_STALE_SECONDS once, and
the sweeper covers anything older. While no relay holds the lock at all (no worker runs one:
workers stopped, or started with SYNC_RELAY off), the web request sees it (`relay_leads`,
checked every LEAD_CHECK_SECONDS) and publishes the delivery itself. Before sending, a batch
of notifications is checked against the table in one query: a row no longer pending
(finished, or marked ignored while the worker was paused) is not sent, nor one that queues
behind a pending delivery of its issue (`_BEHIND_SQL`: that one's task takes it along). A
delivery sent twice is harmless (`claim`).

Errors (database or broker down) never reach the worker: the relay logs, waits (backoff,
capped) and connects again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

from sync.services import MERGEABLE_TYPES

logger = logging.getLogger(__name__)

CHANNEL = "webhook_delivery_pending"  # the trigger's (webhooks/migrations/0003)
LOCK_KEY = 0x5359_4E43_524C_5931  # pg_advisory_lock key: "SYNCRLY1"
TABLE = "webhooks_webhookdelivery"
IDLE_SECONDS = 5.0  # a liveness query on a quiet connection this often
BACKOFF_MAX_SECONDS = 30.0
BATCH_MAX = 500
LEAD_CHECK_SECONDS = 5.0  # how long a web process trusts what it saw of the relay lock

# Options of Django's PostgreSQL backend that are not libpq parameters.
_DJANGO_OPTIONS = {
    "pool",
    "server_side_binding",
    "isolation_level",
    "assume_role",
    "cursor_factory",
}


def relay_conninfo(settings_dict: dict) -> dict:
    """psycopg connection parameters from a Django database's settings."""
    params = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "host": settings_dict.get("HOST"),
        "port": settings_dict.get("PORT"),
    }
    params.update(
        {k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if k not in _DJANGO_OPTIONS}
    )
    params = {k: v for k, v in params.items() if v not in (None, "")}
    params["application_name"] = "sync-relay"
    return params


class PendingRelay:
    """`send(delivery_id, organization_id=...)` for each pending delivery announced."""

    def __init__(
        self,
        conninfo: dict,
        *,
        send: Callable[..., None],
        catch_up_seconds: float,
        standby_seconds: float,
    ) -> None:
        self.conninfo = conninfo
        self.send = send
        self.catch_up_seconds = catch_up_seconds
        self.standby_seconds = standby_seconds
        self.stopping = threading.Event()
        self.sent = 0  # deliveries sent, since the start (for the operator and tests)
        self.skipped = 0  # announced, but no longer pending when their batch was read
        self.behind = 0  # left to the task of a pending delivery of their issue (_BEHIND_SQL)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="pending-relay", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:  # never crash the worker: wait, connect again
                if time.monotonic() - started > 60:
                    backoff = 1.0  # it ran a while: a new failure starts a new backoff
                logger.warning(
                    "relay.error",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_in": backoff},
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    def _session(self) -> None:
        with psycopg.connect(**self.conninfo, autocommit=True, connect_timeout=10) as conn:
            if not self._lead(conn):
                return
            conn.execute(f"LISTEN {CHANNEL}")
            logger.info("relay.leading", extra={"backend": conn.info.backend_pid})
            # Announced while no relay listened: sent once now (older ones: the sweeper's).
            rows = conn.execute(
                f"SELECT id, organization_id FROM {TABLE} WHERE status = 'pending'"  # noqa: S608
                " AND updated_at >= now() - make_interval(secs => %s) ORDER BY id LIMIT 1000",
                (self.catch_up_seconds,),
            ).fetchall()
            self._send(rows, announced=len(rows))
            while not self.stopping.is_set():
                ids = self._wait(conn)
                if ids:
                    self._relay(conn, ids)
                else:
                    conn.execute("SELECT 1")  # a dead connection shows here

    def _lead(self, conn: psycopg.Connection) -> bool:
        """Hold the advisory lock (True), or stand by until it is free (False: stopping)."""
        standby_logged = False
        while not self.stopping.is_set():
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]
            if got:
                return True
            if not standby_logged:
                logger.info("relay.standby", extra={"backend": conn.info.backend_pid})
                standby_logged = True
            self.stopping.wait(self.standby_seconds)
        return False

    def _wait(self, conn: psycopg.Connection) -> list[int]:
        """The delivery ids announced: waits for the first (IDLE_SECONDS at most), then takes
        those already arrived, up to BATCH_MAX."""
        ids: list[int] = []
        for notify in conn.notifies(timeout=IDLE_SECONDS, stop_after=1):
            ids.append(_delivery_id(notify.payload))
        while ids and len(ids) < BATCH_MAX:
            more = [
                _delivery_id(n.payload)
                for n in conn.notifies(timeout=0, stop_after=BATCH_MAX - len(ids))
            ]
            if not more:
                break
            ids.extend(more)
        return [i for i in ids if i is not None]

    def _relay(self, conn: psycopg.Connection, ids: list[int]) -> None:
        # One query for the batch: only what is still pending goes (status checked afresh),
        # and not what queues behind a pending delivery of the same issue (_BEHIND_SQL).
        rows = conn.execute(_RELAY_SQL, {"ids": ids, "types": list(MERGEABLE_TYPES)}).fetchall()
        behind = sum(1 for row in rows if row[2])
        self.behind += behind
        if behind:
            logger.info("relay.left_behind", extra={"count": behind})
        self._send([row[:2] for row in rows if not row[2]], announced=len(set(ids)) - behind)

    def _send(self, rows: list[tuple[int, int | None]], *, announced: int) -> None:
        sent = 0
        for delivery_id, organization_id in rows:
            try:
                self.send(delivery_id, organization_id=organization_id)
                sent += 1
            except Exception as exc:  # the broker is down: the row waits for the sweeper
                logger.warning(
                    "relay.send_failed",
                    extra={"delivery": delivery_id, "error": f"{type(exc).__name__}: {exc}"},
                )
        skipped = max(0, announced - len(rows))
        self.sent += sent
        self.skipped += skipped
        if sent:
            logger.info("relay.sent", extra={"count": sent})
        if skipped:  # finished, or set aside, before the relay read them
            logger.info("relay.skipped", extra={"count": skipped})


# A delivery that queues behind a pending one of the same issue (same source and
# organization, both an issue create or update: `sync.services.MERGEABLE_TYPES`) gets no task:
# that one's task has not claimed it yet, and when it does, it takes along what queued behind
# it (`webhooks.tasks.claim_behind`), this delivery included (committed before the relay was
# told of it). A task sent for it would only find it taken. At high rates most deliveries of a
# busy issue are such. A task that cannot take all of them (full batches; its pair busy, yet
# it ended) sends a task for the first one left (`webhooks.tasks._send_next_behind`); the
# sweeper sends anything pending after SYNC_PENDING_STALE_SECONDS at the latest.
_BEHIND_SQL = (
    f"d.event_type = ANY(%(types)s) AND d.issue_id <> '' AND EXISTS (SELECT 1 FROM {TABLE} p"  # noqa: S608
    " WHERE p.status = 'pending' AND p.source = d.source AND p.issue_id = d.issue_id"
    " AND p.organization_id IS NOT DISTINCT FROM d.organization_id"
    " AND p.event_type = ANY(%(types)s) AND p.id < d.id)"
)
_RELAY_SQL = (
    f"SELECT d.id, d.organization_id, {_BEHIND_SQL} AS behind FROM {TABLE} d"  # noqa: S608
    " WHERE d.id = ANY(%(ids)s) AND d.status = 'pending' ORDER BY d.id"
)


def _delivery_id(payload: str) -> int | None:
    head = payload.partition(":")[0]
    return int(head) if head.isdigit() else None


_relay: PendingRelay | None = None


def relay_in_use() -> bool:
    """Whether stored deliveries are left to the relay (else the web request publishes)."""
    from django.conf import settings
    from django.db import connection

    return (
        settings.SYNC_RELAY
        and not settings.CELERY_TASK_ALWAYS_EAGER
        and connection.vendor == "postgresql"
    )


# (when it was checked, by time.monotonic(); whether a relay held the lock then)
_lead_seen: tuple[float, bool] | None = None


def relay_leads() -> bool:
    """Whether a relay holds the lock of this database (so it will send what is stored), as
    seen at most LEAD_CHECK_SECONDS ago: one read of pg_locks per process that often."""
    global _lead_seen
    now = time.monotonic()
    if _lead_seen is not None and now - _lead_seen[0] < LEAD_CHECK_SECONDS:
        return _lead_seen[1]
    from django.db import connection

    # A bigint advisory key shows as its high and low 32 bits, objsubid 1.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            " AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1)",
            [LOCK_KEY >> 32, LOCK_KEY & 0xFFFF_FFFF],
        )
        leads = bool(cursor.fetchone()[0])
    _lead_seen = (now, leads)
    return leads


def relay_start() -> PendingRelay | None:
    """Start this process's relay thread (a worker's main process), if the relay is in use."""
    global _relay
    if _relay is not None or not relay_in_use():
        return _relay
    from django.conf import settings
    from django.db import connection

    from .tasks import delivery_send

    _relay = PendingRelay(
        relay_conninfo(connection.settings_dict),
        send=delivery_send,
        catch_up_seconds=settings.SYNC_PENDING_STALE_SECONDS,
        standby_seconds=settings.SYNC_RELAY_STANDBY_SECONDS,
    )
    _relay.start()
    return _relay
