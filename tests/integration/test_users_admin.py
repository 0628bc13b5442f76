"""The people settings of an organization (user map, unmapped-user policy, default users) in
the admin and the API, and the unmapped users listed for the admin to map."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.models import UnmappedUser
from sync.users import unmapped_user_record

pytestmark = pytest.mark.django_db

URL = "/api/organizations/"


@pytest.fixture
def seen(two_way_org):
    """Dave (ours) met twice, Erin (the partner's) once, neither with a counterpart."""
    dave = {"id": "acc-dave", "email": "", "name": "Dave"}
    unmapped_user_record(organization=two_way_org, side="local", user=dave, field="assignee")
    unmapped_user_record(organization=two_way_org, side="local", user=dave, field="reporter")
    erin = {"id": "erin", "email": "erin@partner.example", "name": "Erin"}
    unmapped_user_record(organization=two_way_org, side="remote", user=erin, field="assignee")
    return two_way_org


def test_each_unmapped_user_is_recorded_once_with_a_count(seen):
    dave = UnmappedUser.objects.get(user_id="acc-dave")
    assert (dave.side, dave.display_name, dave.count, dave.field) == (
        "local",
        "Dave",
        2,
        "reporter",
    )
    assert dave.first_seen <= dave.last_seen
    assert UnmappedUser.objects.get(user_id="erin").email == "erin@partner.example"


def test_the_dashboard_and_the_organization_page_list_unmapped_users(client, superuser, seen):
    client.force_login(superuser)
    dashboard = client.get("/admin/dashboard/").content.decode()
    assert 'id="unmapped-users"' in dashboard
    assert "Dave" in dashboard and "acc-dave" in dashboard and "Erin" in dashboard
    assert "&quot;acc-dave&quot;: &quot;?&quot;" in dashboard  # the map entry to add
    page = client.get(reverse("admin:organizations_organization_change", args=[seen.pk]))
    text = page.content.decode()
    assert "Dave" in text and "erin@partner.example" in text
    assert 'name="user_map"' in text and 'name="unmapped_user_policy"' in text


def test_a_user_mapped_since_is_no_longer_listed(api, seen):
    response = api.patch(
        f"{URL}{seen.public_id}/", {"userMap": {"acc-dave": "dave"}}, format="json"
    )
    assert response.status_code == 200, response.content
    status = api.get("/api/status/").json()
    assert [u["displayName"] for u in status["unmappedUsers"]] == ["Erin"]


def test_the_api_reads_and_writes_the_people_settings(api, two_way_org):
    url = f"{URL}{two_way_org.public_id}/"
    body = api.get(url).json()
    assert body["userMap"] == {} and body["unmappedUserPolicy"] == "leave"
    patch = {
        "userMap": {"acc-1": "jdoe"},
        "unmappedUserPolicy": "default",
        "defaultRemoteUser": "triage",
    }
    body = api.patch(url, patch, format="json").json()
    assert body["userMap"] == {"acc-1": "jdoe"}
    assert (body["unmappedUserPolicy"], body["defaultRemoteUser"]) == ("default", "triage")
    assert body["defaultLocalUser"] == ""


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"userMap": {"a": "x", "b": "x"}}, "userMap"),
        ({"userMap": ["a"]}, "userMap"),
        ({"userMap": {"a": ""}}, "userMap"),
        ({"unmappedUserPolicy": "default"}, "unmappedUserPolicy"),
        ({"unmappedUserPolicy": "guess"}, "unmappedUserPolicy"),
    ],
)
def test_bad_people_settings_are_refused_with_400(api, two_way_org, patch, field):
    response = api.patch(f"{URL}{two_way_org.public_id}/", patch, format="json")
    assert response.status_code == 400
    assert field in response.json()
