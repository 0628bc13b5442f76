"""Blocked clients, in the database: what a delivery accepted on kept credentials checks in
its own INSERT instead of reading the failed-authentication throttle (`core.throttle`).

The throttle answers 429 to a client (address, target) that failed too often, whatever secret
it sends, so that it cannot learn whether a guess was right. The incoming endpoint accepts a
partner's delivery on credentials it kept (`webhooks.auth.incoming_credentials_cached`) with
no read but that INSERT, which stores the delivery only if no live block names its client
(`webhooks.services._insert_sql`); otherwise the request is answered afresh, reading the
throttle first: 429.

A block is written (upserted, until the end of the throttle's window) when a failure brings
its client to the limit, and again when the throttle says "throttled" (so that a block lost
between counting and writing, a process stopped in between, is back by the next refused
request), at most once per client, target and window in a process. PostgreSQL only: the
kept credentials are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import cache

from django.db import connection
from django.utils import timezone

from core import throttle

from .models import AuthFailureBlock

logger = logging.getLogger(__name__)

# (key, window end) of the blocks this process wrote (or found written).
_written: set[tuple[str, int]] = set()
_WRITTEN_MAX = 1024


@cache
def _upsert_sql() -> str:
    meta = AuthFailureBlock._meta
    quote = connection.ops.quote_name
    table, key, until = (
        quote(meta.db_table),
        quote(meta.get_field("key").column),
        quote(meta.get_field("until").column),
    )
    return (
        f"INSERT INTO {table} ({key}, {until}) VALUES (%s, %s)"  # noqa: S608 - names from the model
        f" ON CONFLICT ({key}) DO UPDATE SET {until} = GREATEST({table}.{until}, EXCLUDED.{until})"
    )


def auth_block_record(*, client: str, target: str) -> None:
    """`client` is blocked from `target` until the throttle's current window ends."""
    if connection.vendor != "postgresql":
        return
    key = throttle.key_digest(client=client, target=target)
    end = throttle.window_end()
    if (key, end) in _written:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(_upsert_sql(), [key, datetime.fromtimestamp(end, UTC)])
    except Exception:
        # Never a 5xx for a refusal; the next refused request of the window writes it.
        logger.warning("throttle.block_unrecorded", exc_info=True)
        return
    if len(_written) >= _WRITTEN_MAX:
        _written.clear()
    _written.add((key, end))


@cache
def unblocked_sql() -> str:
    """A condition, true while no live block names a client: the key and the time (this
    process's clock, as the throttle's windows are) are bound, in that order."""
    meta = AuthFailureBlock._meta
    quote = connection.ops.quote_name
    return (
        f"NOT EXISTS (SELECT 1 FROM {quote(meta.db_table)}"  # noqa: S608 - names from the model
        f" WHERE {quote(meta.get_field('key').column)} = %s"
        f" AND {quote(meta.get_field('until').column)} > %s)"
    )


def auth_blocks_prune() -> int:
    """Delete the blocks that ended (a minute ago: any web clock's window has too)."""
    deleted = AuthFailureBlock.objects.filter(until__lt=timezone.now() - timedelta(minutes=1))
    return deleted.delete()[0]


def auth_blocks_forget() -> None:
    """Forget which blocks this process wrote (tests: their database rows are rolled back)."""
    _written.clear()
