"""A worker keeps an organization's field pairs per configuration version; every change of
its field mappings, whatever makes it, moves the version (a database trigger)."""

from __future__ import annotations

import pytest

from organizations.models import FieldDirection, FieldMapping, Organization
from sync.mapping import PULL, PUSH, field_pairs_of

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
    stale.save()  # writes the old config_version it read
    assert fresh(org).config_version == bumped
    assert pair(org, PULL, "priority") is None
