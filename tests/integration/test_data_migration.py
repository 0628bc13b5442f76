import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_gives_existing_organizations_a_secret():
    executor = MigrationExecutor(connection)
    executor.migrate([("organizations", "0001_initial")])
    old_apps = executor.loader.project_state([("organizations", "0001_initial")]).apps
    OldOrganization = old_apps.get_model("organizations", "Organization")
    old = OldOrganization.objects.create(public_id="org-old", name="Old", incoming_secret="")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT incoming_secret FROM organizations_organization WHERE id=%s", [old.pk]
        )
        assert cursor.fetchone()[0] == ""

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from organizations.models import Organization

    migrated = Organization.objects.get(public_id="org-old")
    assert len(migrated.incoming_secret) >= 43
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT incoming_secret FROM organizations_organization WHERE id=%s", [old.pk]
        )
        assert cursor.fetchone()[0].startswith("enc1:")


@pytest.mark.django_db(transaction=True)
def test_the_secret_migration_keeps_a_previous_secret_valid():
    from datetime import timedelta

    from django.utils import timezone

    executor = MigrationExecutor(connection)
    executor.migrate([("organizations", "0003_sync_policies")])
    old_apps = executor.loader.project_state([("organizations", "0003_sync_policies")]).apps
    OldOrganization = old_apps.get_model("organizations", "Organization")
    OldOrganization.objects.create(
        public_id="org-rot",
        name="Rotated",
        incoming_secret="new-secret",
        previous_incoming_secret="old-secret",
        previous_secret_valid_until=timezone.now() + timedelta(hours=1),
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from organizations import selectors
    from organizations.models import Organization

    org = Organization.objects.get(public_id="org-rot")
    assert selectors.organization_secret_matches(organization=org, secret="old-secret")
    assert selectors.organization_secret_matches(organization=org, secret="new-secret")


@pytest.mark.django_db(transaction=True)
def test_existing_organizations_get_an_empty_user_map_and_leave_unmapped_users_alone():
    executor = MigrationExecutor(connection)
    executor.migrate([("organizations", "0005_push_delete_policy")])
    old_apps = executor.loader.project_state([("organizations", "0005_push_delete_policy")]).apps
    OldOrganization = old_apps.get_model("organizations", "Organization")
    OldOrganization.objects.create(public_id="org-people", name="People", incoming_secret="s")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from organizations.models import Organization

    org = Organization.objects.get(public_id="org-people")
    assert org.user_map == {}
    # Issue 12: a user with no counterpart no longer unassigns the other side.
    assert org.unmapped_user_policy == "leave"
    assert org.default_local_user == org.default_remote_user == ""
