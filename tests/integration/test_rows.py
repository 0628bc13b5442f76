"""`core.rows.instances`: the instances `Model.objects.raw` would give for the same SQL (the
oracle here), on the database the suite runs on: every field through its converters (JSON,
datetimes), computed columns as attributes, instances that save as updates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from core.rows import instances, save_fields
from sync.models import IssueLink
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

LINKS = IssueLink._meta.db_table


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_same_instances_as_raw_with_json_and_datetimes(make_org):
    org = make_org()
    IssueLink.objects.create(
        organization=org,
        local_issue_id="1",
        remote_issue_id="2",
        state={"local": {"labels": ["a", "b"], "summary": "S"}, "n": 1.5},
        lease_owner="w",
        lease_until=timezone.now() + timedelta(seconds=30),
    )
    IssueLink.objects.create(organization=org, local_issue_id="3", remote_issue_id="4")
    sql = f"SELECT * FROM {LINKS} WHERE organization_id = %s ORDER BY id"  # noqa: S608
    got = instances(IssueLink, sql, [org.pk])
    want = list(IssueLink.objects.raw(sql, [org.pk]))
    assert [fields(i) for i in got] == [fields(i) for i in want]
    assert [type(i.state) for i in got] == [type(i.state) for i in want]
    assert got[0].lease_until == want[0].lease_until  # aware datetimes, equal
    assert all(not i._state.adding and i._state.db == "default" for i in got)


def test_computed_columns_are_attributes_and_rows_save_as_updates(make_org):
    org = make_org()
    link = IssueLink.objects.create(organization=org, local_issue_id="1", remote_issue_id="2")
    sql = f"SELECT *, 1 + 1 AS two FROM {LINKS} WHERE id = %s"  # noqa: S608
    (got,) = instances(IssueLink, sql, [link.pk])
    assert got.two == list(IssueLink.objects.raw(sql, [link.pk]))[0].two
    got.last_error = "changed"
    got.save(update_fields=["last_error"])
    assert IssueLink.objects.count() == 1
    assert IssueLink.objects.get(pk=link.pk).last_error == "changed"


def test_an_update_returning_rows(make_org):
    org = make_org()
    a = WebhookDelivery.objects.create(organization=org, body='{"k": [1, 2]}', event_type="x")
    table = WebhookDelivery._meta.db_table
    (got,) = instances(
        WebhookDelivery,
        f"UPDATE {table} SET status = %s WHERE id = %s RETURNING *",  # noqa: S608
        ["processing", a.pk],
    )
    assert fields(got) == fields(WebhookDelivery.objects.get(pk=a.pk))
    assert got.status == "processing"


def test_no_rows_and_missing_columns(make_org):
    org = make_org()
    assert instances(IssueLink, f"SELECT * FROM {LINKS} WHERE id = %s", [0]) == []  # noqa: S608
    link = IssueLink.objects.create(organization=org, local_issue_id="1", remote_issue_id="2")
    with pytest.raises(ValueError, match="state"):
        instances(IssueLink, f"SELECT id, organization_id FROM {LINKS} WHERE id = %s", [link.pk])  # noqa: S608


def test_save_fields_writes_what_save_with_update_fields_writes(make_org):
    org = make_org()
    ours = IssueLink.objects.create(organization=org, local_issue_id="1", remote_issue_id="2")
    django = IssueLink.objects.create(organization=org, local_issue_id="3", remote_issue_id="4")
    for link in (ours, django):
        link.state = {"local": {"labels": ["x"], "summary": "é"}, "n": [1, None]}
        link.last_error = "not named: stays in memory only"
    before = IssueLink.objects.get(pk=ours.pk).updated_at
    save_fields(ours, "state", "updated_at")
    django.save(update_fields=["state", "updated_at"])
    got, want = IssueLink.objects.get(pk=ours.pk), IssueLink.objects.get(pk=django.pk)
    assert got.state == want.state == ours.state
    assert got.last_error == want.last_error == ""
    assert got.updated_at > before  # auto_now, as save() sets it
    assert ours.updated_at == got.updated_at  # and on the instance too


def test_save_fields_on_a_deleted_row_raises_as_save_does(make_org):
    org = make_org()
    link = IssueLink.objects.create(organization=org, local_issue_id="1", remote_issue_id="2")
    IssueLink.objects.filter(pk=link.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(link, "state", "updated_at")
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        link.save(update_fields=["state", "updated_at"])


def test_parameters_are_adapted_as_the_orm_adapts_them(make_org):
    """A datetime parameter is stored as the ORM stores it (on SQLite: naive UTC text, not
    `isoformat()` with an offset), so the column keeps one format and compares right."""
    org = make_org()
    a = IssueLink.objects.create(organization=org, local_issue_id="1", remote_issue_id="2")
    b = IssueLink.objects.create(organization=org, local_issue_id="3", remote_issue_id="4")
    when = timezone.now() + timedelta(seconds=30)
    instances(
        IssueLink,
        f"UPDATE {LINKS} SET lease_until = %s WHERE id = %s RETURNING *",  # noqa: S608
        [when, a.pk],
    )
    IssueLink.objects.filter(pk=b.pk).update(lease_until=when)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, lease_until FROM {LINKS} WHERE id IN (%s, %s)", [a.pk, b.pk])  # noqa: S608
        stored = dict(cursor.fetchall())
    assert stored[a.pk] == stored[b.pk]
    assert IssueLink.objects.filter(lease_until=when).count() == 2
