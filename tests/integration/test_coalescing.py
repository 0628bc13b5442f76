"""Coalescing: deliveries of one issue pair that queued behind each other become one sync.

The worker's task (`webhooks.tasks.process_delivery_task`) runs here in-process on the real
database, between two simulated Jira sites; every delivery it takes along ends final."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from celery.exceptions import Retry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jiraapi.events import JiraEvent
from sync.leases import issue_link_lease
from sync.models import EchoLock, IssueLink, SyncEvent
from webhooks.models import DeliverySource, WebhookDelivery
from webhooks.services import delivery_store
from webhooks.tasks import FINAL, process_delivery_task

from .test_comment_copies import add_comment, comment_texts
from .test_loop_prevention import OTHER, WAYS

pytestmark = pytest.mark.django_db


def store(world, side: str, hook: dict) -> WebhookDelivery:
    """A captured webhook stored as a pending delivery (its task not run)."""
    delivery, created = delivery_store(
        source=DeliverySource.LOCAL if side == "local" else DeliverySource.PARTNER,
        organization=None if side == "local" else world.org,
        body=hook["raw"],
        event=JiraEvent.from_body(hook["raw"]),
        headers=hook["headers"],
    )
    assert created
    return delivery


def statuses(deliveries: list[WebhookDelivery]) -> list[tuple[str, str]]:
    for d in deliveries:
        d.refresh_from_db()
    return [(d.status, d.last_error) for d in deliveries]


def events_of(deliveries: list[WebhookDelivery]) -> dict[int, int]:
    return {d.pk: SyncEvent.objects.filter(delivery_id=d.pk).count() for d in deliveries}


@pytest.mark.parametrize("way", WAYS)
def test_queued_updates_of_one_pair_become_one_sync(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    for summary in ("one", "two", "three"):
        world.edit(edited, summary=summary)
    deliveries = [store(world, edited, hook) for hook in world.take(edited)]
    assert len(deliveries) == 3
    world.reset_calls()

    process_delivery_task.apply(args=[deliveries[0].pk])  # the first one's task

    first = deliveries[0].pk
    assert statuses(deliveries) == [
        ("done", ""),
        ("done", f"merged into delivery {first}"),
        ("done", f"merged into delivery {first}"),
    ]
    assert world.fields(other)["summary"] == "three"
    assert world.calls(other, writes_only=True) == 1  # one sync wrote the latest state once
    # One sync, one record; a merged delivery has none of its own (never two for one).
    assert events_of(deliveries) == {first: 1, deliveries[1].pk: 0, deliveries[2].pk: 0}
    # The merged deliveries' own tasks, when they run, find them final and do nothing.
    for d in deliveries[1:]:
        process_delivery_task.apply(args=[d.pk])
    assert world.calls(other, writes_only=True) == 1


@pytest.mark.parametrize("way", WAYS)
def test_the_outcomes_of_merged_deliveries_are_written_together(world, way):
    """The deliveries a sync carried end with one UPDATE for each distinct outcome (here: the
    sync's own, and "merged into" it), not one each; every row still gets its own status,
    attempt and Jira calls."""
    edited = WAYS[way]
    for n in range(5):
        world.edit(edited, summary=f"edit {n}")
    deliveries = [store(world, edited, hook) for hook in world.take(edited)]
    assert len(deliveries) == 5
    table = WebhookDelivery._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        process_delivery_task.apply(args=[deliveries[0].pk])

    first = deliveries[0].pk
    assert statuses(deliveries) == [("done", "")] + [("done", f"merged into delivery {first}")] * 4
    assert [d.attempts for d in deliveries] == [1] * 5
    assert deliveries[0].calls >= 2  # its sync read one site and wrote the other
    assert [d.calls for d in deliveries[1:]] == [0] * 4
    finishes = [q for q in queries if q["sql"].startswith(f"UPDATE {table} SET status = 'done'")]
    assert len(finishes) == 2


def test_the_organizations_mapping_a_project_are_read_once_for_a_batch(world):
    """Our Jira's deliveries name a project; which organizations map it (and their
    configuration's stamps) is read once for the deliveries one task takes together, all
    received before it read them, not once for each; the next task reads it afresh."""
    from organizations.models import Organization

    for n in range(4):
        world.edit("local", summary=f"edit {n}")
    deliveries = [store(world, "local", hook) for hook in world.take("local")]
    table = Organization._meta.db_table

    def stamp_reads(queries) -> int:
        return sum(1 for q in queries if q["sql"].startswith(f"SELECT DISTINCT {table}.id"))

    with CaptureQueriesContext(connection) as queries:
        process_delivery_task.apply(args=[deliveries[0].pk])
    assert [s for s, _ in statuses(deliveries)] == ["done"] * 4
    assert stamp_reads(queries) == 1

    Organization.objects.filter(pk=world.org.pk).update(enabled=False)
    world.edit("local", summary="after")
    (later,) = [store(world, "local", hook) for hook in world.take("local")]
    with CaptureQueriesContext(connection) as queries:
        process_delivery_task.apply(args=[later.pk])
    assert stamp_reads(queries) == 1
    assert statuses([later])[0][0] == "ignored"  # the organization, off now, was read again


def test_deliveries_processed_before_a_failure_in_their_batch_are_written(world, monkeypatch):
    """A batch cut short by an error nobody caught (the database, say) still writes how the
    deliveries processed before it ended; the one that failed and the rest stay taken, for
    the sweeper."""
    from webhooks import tasks

    for n in range(3):
        world.edit("local", summary=f"edit {n}")
    deliveries = [store(world, "local", hook) for hook in world.take("local")]
    real = tasks.delivery_process

    def failing_on_the_last(delivery, **kwargs):
        if delivery.pk == deliveries[2].pk:
            raise KeyboardInterrupt  # not an Exception: `_one` does not catch it
        return real(delivery, **kwargs)

    monkeypatch.setattr(tasks, "delivery_process", failing_on_the_last)
    with pytest.raises(KeyboardInterrupt):
        process_delivery_task.apply(args=[deliveries[0].pk], throw=True)

    first = deliveries[0].pk
    assert statuses(deliveries) == [
        ("done", ""),
        ("done", f"merged into delivery {first}"),
        ("processing", ""),
    ]


@pytest.mark.parametrize("echo_first", [True, False], ids=["echo-first", "genuine-first"])
@pytest.mark.parametrize("way", WAYS)
def test_an_echo_among_merged_deliveries_is_still_an_echo_and_its_lock_consumed(
    world, way, echo_first
):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    assert world.feed_all(edited) == ["done"]  # W written to `other`: its echo is on its way
    (echo_hook,) = world.take(other)
    world.edit(other, priority={"name": "Highest"})  # a person, on the other side
    (genuine_hook,) = world.take(other)
    if echo_first:
        echo_delivery = store(world, other, echo_hook)
        genuine_delivery = store(world, other, genuine_hook)
    else:
        genuine_delivery = store(world, other, genuine_hook)
        echo_delivery = store(world, other, echo_hook)
    side = "local" if other == "local" else "remote"
    assert EchoLock.objects.filter(side=side, field="summary").exists()
    world.reset_calls()
    first = echo_delivery if echo_first else genuine_delivery

    process_delivery_task.apply(args=[first.pk])

    assert statuses([echo_delivery])[0][0] == "echo"
    assert statuses([genuine_delivery]) == [("done", "")]
    assert not EchoLock.objects.filter(side=side, field="summary").exists()  # consumed
    assert world.fields(edited)["priority"]["name"] == "Highest"
    assert world.fields(edited)["summary"] == "W"
    assert world.calls(edited, writes_only=True) == 1  # the priority only
    assert world.calls(other, writes_only=True) == 0
    assert events_of([echo_delivery, genuine_delivery]) == {
        echo_delivery.pk: 1,
        genuine_delivery.pk: 1,
    }


@pytest.mark.parametrize("way", WAYS)
def test_an_echo_alone_looks_for_what_queued_behind_once(world, way):
    """An echo syncs nothing and holds no lease: nothing can have queued behind a sync of
    its pair, so after it the worker does not look again (deliveries that came meanwhile
    have their own tasks). Before it, it does, like every delivery."""
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="W")
    assert world.feed_all(edited) == ["done"]
    (echo_hook,) = world.take(other)
    echo_delivery = store(world, other, echo_hook)
    table = WebhookDelivery._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        process_delivery_task.apply(args=[echo_delivery.pk])

    assert statuses([echo_delivery])[0][0] == "echo"
    looks = [q for q in queries if f"WHERE id IN (SELECT id FROM {table}" in q["sql"]]
    assert len(looks) == 1


@pytest.mark.parametrize("way", WAYS)
def test_deletes_and_comments_are_not_merged_away(world, way):
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="before the comment")
    key = world.keys[edited]
    add_comment(world, edited, "a person's comment")
    world.edit(edited, summary="after the comment")
    hooks = world.take(edited)
    deliveries = [store(world, edited, hook) for hook in hooks]
    kinds = [d.event_type for d in deliveries]
    assert any(k.startswith("comment_") for k in kinds) or len(deliveries) > 2, kinds

    process_delivery_task.apply(args=[deliveries[0].pk])
    # The comment's delivery kept its own task: still pending until it runs.
    comment_ones = [d for d in deliveries if d.event_type.startswith("comment_")]
    for d in comment_ones:
        d.refresh_from_db()
        assert d.status == "pending"
        process_delivery_task.apply(args=[d.pk])
    for d in deliveries:
        process_delivery_task.apply(args=[d.pk])  # a no-op for those already final
    assert all(status in ("done", "echo", "ignored") for status, _ in statuses(deliveries))
    assert any("a person's comment" in t for t in comment_texts(world, other))
    assert world.fields(other)["summary"] == "after the comment"

    # A delete queued behind an update is not merged into the update's sync.
    world.edit(edited, summary="last words")
    world.api(edited, "DELETE", f"/issue/{key}")
    last = [store(world, edited, hook) for hook in world.take(edited)]
    update = next(d for d in last if d.event_type == "jira:issue_updated")
    delete = next(d for d in last if d.event_type == "jira:issue_deleted")
    process_delivery_task.apply(args=[update.pk])
    delete.refresh_from_db()
    assert delete.status == "pending"  # untouched: its own task decides
    process_delivery_task.apply(args=[delete.pk])
    delete.refresh_from_db()
    assert delete.status in FINAL, delete.last_error
    assert "merged" not in delete.last_error


@pytest.mark.parametrize("way", WAYS)
def test_a_delivery_queued_while_the_pair_is_busy_is_synced_by_the_holder(world, way):
    """Another worker holds the pair: the delivery goes back to pending (no attempt spent);
    the holder, once its sync is done, takes what queued behind it and syncs it."""
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="first")
    (first_hook,) = world.take(edited)
    first = store(world, edited, first_hook)
    link = IssueLink.objects.get()
    with issue_link_lease(link):  # another worker's sync of this pair, running
        world.edit(edited, summary="second")
        (second_hook,) = world.take(edited)
        second = store(world, edited, second_hook)
        with pytest.raises(Retry):
            process_delivery_task.run(second.pk)
        second.refresh_from_db()
        assert (second.status, second.attempts) == ("pending", 0)
    # The holder's task: its own delivery, then what queued behind its read.
    process_delivery_task.apply(args=[first.pk])
    assert [s for s, _ in statuses([first, second])] == ["done", "done"]
    assert world.fields(other)["summary"] == "second"
    assert events_of([first, second])[first.pk] == 1
    assert sum(events_of([first, second]).values()) <= 2


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_arrives_after_the_running_sync_read_the_issue_is_not_lost(settings):
    """A partner edit made and delivered while a sync of its pair is running (after that
    sync read the issue) is never counted as covered by it: a sync runs for it."""
    from .test_loop_prevention import World

    world = World(settings)
    try:
        world.link_pair()
        world.edit("partner", summary="first")
        (first_hook,) = world.take("partner")
        first = store(world, "partner", first_hook)
        # Every partner call takes a while: the second edit lands during the first sync.
        requests.post(
            f"{world.sims['partner'].base_url}/_sim/faults",
            json={"latency_ms": 400},
            timeout=5,
        )
        stored: list[WebhookDelivery] = []

        def second_edit() -> None:
            deadline = time.monotonic() + 10
            while not WebhookDelivery.objects.filter(pk=first.pk, status="processing").exists():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
            time.sleep(0.2)  # the first sync's read of the partner issue is under way
            world.edit("partner", summary="second")
            (hook,) = world.take("partner")
            stored.append(store(world, "partner", hook))
            connection.close()  # this thread's own connection

        thread = threading.Thread(target=second_edit)
        thread.start()
        process_delivery_task.apply(args=[first.pk])
        thread.join(30)
        requests.post(
            f"{world.sims['partner'].base_url}/_sim/faults", json={"latency_ms": 0}, timeout=5
        )
        (second,) = stored
        process_delivery_task.apply(args=[second.pk])  # its own task (a no-op if taken)
        assert [s for s, _ in statuses([first, second])] == ["done", "done"]
        assert f"merged into delivery {first.pk}" not in second.last_error
        assert world.fields("local")["summary"] == "second"
    finally:
        world.close()


def test_a_failed_sync_hands_the_rest_of_its_batch_back(world, settings):
    """The partner fails: the claimed delivery is retried (here: dead at once); the ones
    taken along are not each tried against the failing site, but wait their own turn."""
    settings.SYNC_MAX_ATTEMPTS = 1
    requests.post(
        f"{world.sims['partner'].base_url}/_sim/faults",
        json={"error_ratio": 1.0, "error_statuses": [500]},
        timeout=5,
    )
    for summary in ("one", "two", "three"):
        world.edit("local", summary=summary)
    deliveries = [store(world, "local", hook) for hook in world.take("local")]

    process_delivery_task.apply(args=[deliveries[0].pk])

    first, *rest = statuses(deliveries)
    assert first[0] == "dead"
    assert [s for s, _ in rest] == ["pending", "pending"]
    assert all(d.attempts == 0 for d in deliveries[1:])


@pytest.mark.parametrize("way", WAYS)
def test_more_queued_than_the_task_takes_are_sent_on(world, way, monkeypatch, broker):
    """The relay sends no task for what queues behind a pending delivery of the issue (its
    task takes them along), so what one task's rounds cannot take gets a task from it."""
    import json

    from webhooks import tasks

    from .conftest import queued

    monkeypatch.setattr(tasks, "COALESCE_BATCH", 2)
    edited = WAYS[way]
    other = OTHER[edited]
    summaries = [f"s{n}" for n in range(9)]  # 1 + 2 rounds of 2 + 2 more: 4 left over
    for summary in summaries:
        world.edit(edited, summary=summary)
    deliveries = [store(world, edited, hook) for hook in world.take(edited)]
    assert len(deliveries) == len(summaries)

    assert queued(broker) == {}  # stored in the test's transaction: nothing sent at commit
    process_delivery_task.apply(args=[deliveries[0].pk])

    left = [
        d
        for d, (status, _) in zip(deliveries, statuses(deliveries), strict=True)
        if status == "pending"
    ]
    assert left and len(left) < len(deliveries) - 1
    ((queue, n),) = queued(broker).items()  # one task, for the first one left
    assert n == 1
    message = json.loads(broker.lpop(queue))
    assert message["headers"]["argsrepr"] == repr((left[0].pk,))
    process_delivery_task.apply(args=[left[0].pk])
    assert [status for status, _ in statuses(deliveries)] == ["done"] * len(deliveries)
    assert world.fields(other)["summary"] == summaries[-1]


@pytest.mark.parametrize("way", WAYS)
def test_what_queued_behind_a_delivery_that_found_its_pair_busy_is_sent_on(world, way, broker):
    """A delivery that finds its pair busy takes nothing along; if it then ends without the
    lease (an echo needs none), what the relay left behind it gets a task from it."""
    import json

    from .conftest import queued

    edited = WAYS[way]
    other = OTHER[edited]
    for summary in ("W1", "W2"):
        world.edit(edited, summary=summary)
        assert world.feed_all(edited) == ["done"]  # written to `other`: its echo on its way
    echoes = [store(world, other, hook) for hook in world.take(other)]
    assert len(echoes) == 2
    assert queued(broker) == {}
    with issue_link_lease(IssueLink.objects.get()):  # another worker's sync of this pair
        process_delivery_task.apply(args=[echoes[0].pk])
    assert [s for s, _ in statuses(echoes)] == ["echo", "pending"]
    ((queue, n),) = queued(broker).items()
    assert n == 1
    message = json.loads(broker.lpop(queue))
    assert message["headers"]["argsrepr"] == repr((echoes[1].pk,))
    process_delivery_task.apply(args=[echoes[1].pk])
    assert [s for s, _ in statuses(echoes)] == ["echo", "echo"]
