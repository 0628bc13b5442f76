"""Taking echo locks on PostgreSQL: a lock awaiting one write goes in one statement; one
awaiting several gives one write to each consumer; concurrent consumers of one lock never
both take its last write."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from sync import echo
from sync.models import EchoLock

pytestmark = pytest.mark.django_db(transaction=True)

SUMMARY = {"summary": "S"}


def consume(org) -> set[str]:
    return echo.echo_consume(organization=org, side="local", issue_id="10", values=SUMMARY)


def expect(org, times: int = 1) -> None:
    for _ in range(times):
        echo.echo_expect(organization=org, side="local", issue_id="10", values=SUMMARY)


def test_a_lock_awaiting_one_write_is_taken_in_one_statement(make_org):
    org = make_org()
    expect(org)
    with CaptureQueriesContext(connection) as queries:
        assert consume(org) == {"summary"}
    assert len(queries) == 1
    assert not EchoLock.objects.exists()
    assert consume(org) == set()  # taken: the same value again is a person's


def test_a_lock_awaiting_three_writes_gives_three_and_goes(make_org):
    org = make_org()
    expect(org, times=3)
    assert EchoLock.objects.get().pending == 3
    assert [consume(org) for _ in range(4)] == [{"summary"}] * 3 + [set()]
    assert not EchoLock.objects.exists()


@pytest.mark.parametrize("pending", [1, 2])
def test_concurrent_consumers_take_each_write_once(make_org, pending):
    org = make_org()
    for _ in range(15):
        expect(org, times=pending)
        consumers = pending + 1
        barrier = threading.Barrier(consumers)
        taken: list[bool] = []

        def run(barrier: threading.Barrier, taken: list[bool]) -> None:
            try:
                barrier.wait()
                taken.append(bool(consume(org)))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(barrier, taken)) for _ in range(consumers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(taken) == [False] + [True] * pending
        assert not EchoLock.objects.exists()
