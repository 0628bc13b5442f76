"""A delete is never lost to a sync of the same issue running on another worker.

Two workers are played by two threads running the worker's task on the real database; the
simulated site holds one answer of the first worker's (its read of the issue) while the
other side of the race happens, so each ordering is made, not waited for."""

from __future__ import annotations

import base64
import threading

import psycopg
import pytest
import requests
from celery.exceptions import Retry
from django.db import connection

from organizations import services as org_services
from sync.models import IssueLink, LinkStatus
from webhooks.models import WebhookDelivery
from webhooks.pending_relay import LOCK_KEY, relay_conninfo
from webhooks.tasks import FINAL, process_delivery_task

from .test_coalescing import store
from .test_loop_prevention import OTHER, SYNC, WAYS, World

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_relay():
    """The deliveries stored here are committed: no relay of pending deliveries (the system
    tests' worker, when they ran first in this session) sends them to a worker of its own.
    This connection takes the relay lock (a leading relay's connection is cut first)."""
    holder = psycopg.connect(**relay_conninfo(connection.settings_dict), autocommit=True)
    try:
        holder.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'sync-relay' AND datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        yield
    finally:
        holder.close()


class HeldRead:
    """The site's answer to the sync account's first read of one issue, held until released:
    `answered` first (the read saw the issue as it was), or before the site looks (the read
    sees the issue as it is once released)."""

    def __init__(self, world: World, side: str, issue_id: str, *, answered: bool) -> None:
        self.app = world.sims[side].app
        self.sync_user = SYNC[side][0]
        self.issue_id = issue_id
        self.answered = answered
        self.reached = threading.Event()
        self.release = threading.Event()
        self.used = False
        self._handle = self.app.handle
        self.app.handle = self._held

    def _held(self, method, target, headers, raw):
        path = target.split("?", 1)[0].rstrip("/")
        mine = (
            not self.used
            and method == "GET"
            and path.rsplit("/", 1)[-1] == self.issue_id
            and "/issue/" in path
            and _basic_user(headers.get("Authorization")) == self.sync_user
        )
        if not mine:
            return self._handle(method, target, headers, raw)
        self.used = True
        if self.answered:
            answer = self._handle(method, target, headers, raw)
            self.reached.set()
            self.release.wait(30)
            return answer
        self.reached.set()
        self.release.wait(30)
        return self._handle(method, target, headers, raw)

    def close(self) -> None:
        self.release.set()
        self.app.handle = self._handle


def _basic_user(header: str | None) -> str:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    return base64.b64decode(encoded).decode("utf-8", "replace").partition(":")[0]


def run_in_thread(delivery: WebhookDelivery) -> threading.Thread:
    """The delivery's task on another worker (its own database connection)."""

    def work() -> None:
        try:
            process_delivery_task.apply(args=[delivery.pk])
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def copies(world: World, side: str) -> list[dict]:
    """The issues of the side's mapped project (the copies the sync made there)."""
    project = "LOC" if side == "local" else "REM"
    return world.api(side, "POST", "/search/jql", json={"jql": f"project = {project}"})["issues"]


def delete_issue(world: World, side: str, key: str) -> None:
    world.api(side, "DELETE", f"/issue/{key}")


def settle(delivery: WebhookDelivery) -> str:
    """Run a delivery's task until it is final (a busy pair sends it again), as the queue
    would; its status."""
    for _ in range(10):
        try:
            process_delivery_task.apply(args=[delivery.pk])
        finally:
            delivery.refresh_from_db()
        if delivery.status in FINAL:
            return delivery.status
    return delivery.status


@pytest.fixture
def new_world(settings):
    w = World(settings)
    yield w
    w.close()


@pytest.mark.parametrize("retried", [False, True], ids=["first-try", "retried-create"])
@pytest.mark.parametrize("way", WAYS)
def test_a_delete_processed_while_the_create_is_under_way_leaves_no_copy(new_world, way, retried):
    """The create's worker read the issue; then the issue is deleted and its delete delivery
    runs on another worker before the create's sync made (or took) the pair, so it finds no
    copy to delete: the create makes none either (its plan reads the source's comments under
    the pair's lease, finds the issue gone, and ends as a delete would). `retried`: the
    create's first attempt failed at the target (its pair is made, with no copy), and its
    retry is the one under way."""
    world = new_world
    edited = WAYS[way]
    other = OTHER[edited]
    created = world.create_issue(edited, "Short-lived")
    (create_hook,) = world.take(edited)
    create = store(world, edited, create_hook)
    if retried:
        world.sims[other].set_faults(error_count=1, error_statuses=[400], path_pattern="/issue$")
        process_delivery_task.apply(args=[create.pk])
        world.sims[other].faults.clear()
        create.refresh_from_db()
        assert create.status == "dead"
        assert IssueLink.objects.get().status == LinkStatus.NEW
        WebhookDelivery.objects.filter(pk=create.pk).update(status="failed")  # sent again
    held = HeldRead(world, edited, str(created["id"]), answered=True)
    try:
        worker = run_in_thread(create)
        assert held.reached.wait(30)  # the create's read saw the issue

        delete_issue(world, edited, created["key"])
        (delete_hook,) = world.take(edited)
        delete = store(world, edited, delete_hook)
        process_delivery_task.apply(args=[delete.pk])  # another worker, meanwhile
    finally:
        held.close()
    worker.join(30)
    assert not worker.is_alive()

    assert settle(delete) in FINAL
    create.refresh_from_db()
    assert create.status == "done", create.last_error  # not dead on the source's 404
    assert copies(world, other) == []


@pytest.mark.parametrize("way", WAYS)
def test_a_delete_applied_by_an_earlier_delivery_follows_the_policy_set_before_it(world, way):
    """An edit's delivery started (and read the organization) before the admin chose to
    delete copies and before the issue was deleted; its read of the issue finds it gone, so
    it applies the delete: by the policy as it is when the delete is applied."""
    edited = WAYS[way]
    other = OTHER[edited]
    world.edit(edited, summary="last edit")
    (edit_hook,) = world.take(edited)
    edit = store(world, edited, edit_hook)
    link = IssueLink.objects.get()
    source_id = link.local_issue_id if edited == "local" else link.remote_issue_id
    held = HeldRead(world, edited, str(source_id), answered=False)
    policy = "local_delete_policy" if way == "push" else "remote_delete_policy"
    try:
        worker = run_in_thread(edit)
        assert held.reached.wait(30)  # the edit's worker is about to read the issue

        org_services.organization_update(organization=world.org, data={policy: "delete"})
        delete_issue(world, edited, world.keys[edited])
        (delete_hook,) = world.take(edited)
        delete = store(world, edited, delete_hook)
    finally:
        held.close()
    worker.join(30)
    assert not worker.is_alive()

    assert settle(delete) in FINAL
    edit.refresh_from_db()
    assert edit.status in FINAL
    response = requests.get(
        f"{world.sims[other].base_url}/rest/api/{world.versions[other]}/issue/{world.keys[other]}",
        auth=("alice@example.com", "alice-token"),
        timeout=10,
    )
    assert response.status_code == 404  # the copy is deleted, as the policy now says


@pytest.mark.parametrize("way", WAYS)
def test_a_delete_after_a_create_whose_answer_was_lost_deletes_the_copy_it_made(
    new_world, settings, way
):
    """The create's call made the copy but its answer was lost (the create is to be retried);
    the issue is deleted and its delete delivery runs before that retry: the copy is found
    by its tag and the delete policy applies to it, rather than the pair seeming copyless."""
    settings.SYNC_CREATE_SETTLE_SECONDS = 0  # look at once
    world = new_world
    edited = WAYS[way]
    other = OTHER[edited]
    policy = "local_delete_policy" if way == "push" else "remote_delete_policy"
    org_services.organization_update(organization=world.org, data={policy: "delete"})
    created = world.create_issue(edited, "Short-lived")
    (create_hook,) = world.take(edited)
    create = store(world, edited, create_hook)
    world.sims[other].set_faults(response_lost_count=1, path_pattern="/issue$")
    with pytest.raises(Retry):  # its retry is queued
        process_delivery_task.run(create.pk)
    world.sims[other].faults.clear()
    assert IssueLink.objects.get().status == LinkStatus.CREATING
    assert len(copies(world, other)) == 1  # made, unknown to us

    delete_issue(world, edited, created["key"])
    (delete_hook,) = world.take(edited)
    delete = store(world, edited, delete_hook)
    assert settle(delete) == "done"

    assert copies(world, other) == []
    assert IssueLink.objects.get().status == LinkStatus.DELETED
    assert settle(create) == "done"  # the create's retry, when it comes, makes nothing
    assert copies(world, other) == []
