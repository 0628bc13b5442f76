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
