"""Organization.config_version also moves on every change of a project mapping and of the
organization's own settings (any column but `last_delivery_at`, which the endpoint writes up
to once a second, `updated_at` and the version itself): a worker keeps an organization, its
project mappings and its field pairs per process by version (`organizations.selectors`,
`sync.mapping`)."""

from django.db import migrations

# Written often, and read by no sync: a change of these alone keeps the version.
UNVERSIONED = ("last_delivery_at", "updated_at", "config_version")

POSTGRES = """
CREATE TRIGGER organizations_projectmapping_config
    AFTER INSERT OR UPDATE OR DELETE ON organizations_projectmapping
    FOR EACH ROW EXECUTE FUNCTION organizations_config_bump();
CREATE OR REPLACE FUNCTION organizations_config_keep() RETURNS trigger AS $$
BEGIN
    -- A save of an Organization read before the last bump never moves the version back.
    NEW.config_version := GREATEST(NEW.config_version, OLD.config_version);
    IF to_jsonb(NEW) - '{{{unversioned}}}'::text[]
            IS DISTINCT FROM to_jsonb(OLD) - '{{{unversioned}}}'::text[] THEN
        NEW.config_version := NEW.config_version + 1;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
""".format(unversioned=",".join(UNVERSIONED))
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS organizations_projectmapping_config ON organizations_projectmapping;
CREATE OR REPLACE FUNCTION organizations_config_keep() RETURNS trigger AS $$
BEGIN
    NEW.config_version := GREATEST(NEW.config_version, OLD.config_version);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
SQLITE_PROJECT_MAPPING = [
    f"CREATE TRIGGER organizations_projectmapping_config_{op.lower()} AFTER {op} "  # noqa: S608
    "ON organizations_projectmapping BEGIN UPDATE organizations_organization "
    f"SET config_version = config_version + 1 WHERE id IN ({ids}); END"
    for op, ids in (
        ("INSERT", "NEW.organization_id"),
        ("UPDATE", "OLD.organization_id, NEW.organization_id"),
        ("DELETE", "OLD.organization_id"),
    )
]


def _sqlite_organization(columns: list[str]) -> list[str]:
    """SQLite has no row comparison: the columns are listed (those of this migration's
    state; a later migration adding a column to Organization recreates these triggers)."""
    changed = " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in columns)
    return [
        "DROP TRIGGER IF EXISTS organizations_organization_config_keep",
        "CREATE TRIGGER organizations_organization_config_keep AFTER UPDATE "  # noqa: S608
        "ON organizations_organization "
        f"WHEN NEW.config_version < OLD.config_version AND NOT ({changed}) "
        "BEGIN UPDATE organizations_organization SET config_version = OLD.config_version "
        "WHERE id = NEW.id; END",
        "CREATE TRIGGER organizations_organization_config_change AFTER UPDATE "  # noqa: S608
        f"ON organizations_organization WHEN {changed} "
        "BEGIN UPDATE organizations_organization "
        "SET config_version = MAX(NEW.config_version, OLD.config_version) + 1 "
        "WHERE id = NEW.id; END",
    ]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES)
    elif vendor == "sqlite":
        organization = apps.get_model("organizations", "Organization")
        columns = [
            f.column for f in organization._meta.concrete_fields if f.column not in UNVERSIONED
        ]
        for sql in SQLITE_PROJECT_MAPPING + _sqlite_organization(columns):
            schema_editor.execute(sql)
    else:  # pragma: no cover - the supported databases are above
        raise RuntimeError(f"no config_version trigger for {vendor}")


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)
    elif vendor == "sqlite":
        for op in ("insert", "update", "delete"):
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS organizations_projectmapping_config_{op}"
            )
        schema_editor.execute("DROP TRIGGER IF EXISTS organizations_organization_config_change")
        schema_editor.execute("DROP TRIGGER IF EXISTS organizations_organization_config_keep")
        schema_editor.execute(
            "CREATE TRIGGER organizations_organization_config_keep AFTER UPDATE "
            "ON organizations_organization WHEN NEW.config_version < OLD.config_version "
            "BEGIN UPDATE organizations_organization SET config_version = OLD.config_version "
            "WHERE id = NEW.id; END"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0017_config_version"),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]
