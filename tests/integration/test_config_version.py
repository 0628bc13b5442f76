"""A worker keeps an organization, its project mappings and its field pairs per configuration
version; every change of them, whatever makes it, moves the version (database triggers), but
the endpoint's `last_delivery_at` does not."""

from __future__ import annotations

import pytest
from django.db.models.expressions import RawSQL
from django.utils import timezone

from organizations import services
from organizations.models import FieldDirection, FieldMapping, Organization, ProjectMapping
from organizations.selectors import ORGANIZATION_STAMP_SQL, organization_at_stamp
from sync.mapping import PULL, PUSH, field_pairs_of, project_mappings_of

pytestmark = pytest.mark.django_db


def fresh(org: Organization) -> Organization:
    return Organization.objects.get(pk=org.pk)


def pair(org: Organization, way: str, name: str):
    return next((p for p in field_pairs_of(fresh(org), way) if p.local == name), None)


def test_every_change_of_a_field_mapping_is_seen_by_the_next_delivery(make_org):
    org = make_org()
    assert pair(org, PULL, "priority") is not None  # a default pair, both ways
    mapping = FieldMapping.objects.create(
        organization=org, local_field="priority", remote_field="priority"
    )
    assert pair(org, PULL, "priority").direction == FieldDirection.BOTH
    # A queryset update (no save, no signal) is seen all the same.
    FieldMapping.objects.filter(pk=mapping.pk).update(direction=FieldDirection.PUSH)
    assert pair(org, PULL, "priority") is None
    assert pair(org, PUSH, "priority") is not None
    mapping.refresh_from_db()
    mapping.value_map = {"High": "P1"}
    mapping.save()
    assert pair(org, PUSH, "priority").value_map == {"High": "P1"}
    FieldMapping.objects.filter(organization=org).delete()
    assert pair(org, PULL, "priority").direction == FieldDirection.BOTH


def test_a_stale_organization_saved_never_moves_the_version_back(make_org):
    org = make_org()
    stale = fresh(org)
    FieldMapping.objects.create(
        organization=org,
        local_field="priority",
        remote_field="priority",
        direction=FieldDirection.PUSH,
    )
    bumped = fresh(org).config_version
    assert bumped > stale.config_version
    stale.name = "renamed"
    stale.save()  # writes the old config_version it read (and a new name: a change)
    assert fresh(org).config_version > bumped
    assert pair(org, PULL, "priority") is None


def stamp(org: Organization) -> str:
    sql = ORGANIZATION_STAMP_SQL.format(table=Organization._meta.db_table)
    return (
        Organization.objects.filter(pk=org.pk)
        .annotate(stamp=RawSQL(sql, ()))  # noqa: S611 - ours
        .values_list("stamp", flat=True)
        .get()
    )


def remote_keys(org: Organization) -> list[str]:
    return [m.remote_project_key for m in project_mappings_of(fresh(org))]


def test_every_change_of_a_project_mapping_is_seen_by_the_next_delivery(make_org):
    org = make_org()
    assert remote_keys(org) == []
    mapping = services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REM"
    )
    assert remote_keys(org) == ["REM"]
    ProjectMapping.objects.filter(pk=mapping.pk).update(remote_project_key="OTHER")
    assert remote_keys(org) == ["OTHER"]
    ProjectMapping.objects.filter(pk=mapping.pk).delete()
    assert remote_keys(org) == []


def test_a_change_of_the_organizations_settings_is_seen_but_its_last_delivery_is_no_change(
    make_org,
):
    org = make_org(remote_token="first")
    assert organization_at_stamp(pk=org.pk, stamp=stamp(org)).remote_token == "first"
    before = stamp(org)
    Organization.objects.filter(pk=org.pk).update(last_delivery_at=timezone.now())
    assert stamp(org) == before  # written up to once a second: the copy kept stays good
    Organization.objects.filter(pk=org.pk).update(remote_token="second")  # no save, no signal
    assert stamp(org) != before
    assert organization_at_stamp(pk=org.pk, stamp=stamp(org)).remote_token == "second"
    Organization.objects.filter(pk=org.pk).update(enabled=False)
    assert organization_at_stamp(pk=org.pk, stamp=stamp(org)).enabled is False
