"""Organization.config_version, bumped by a trigger on every change of a field mapping."""

from django.db import migrations, models

POSTGRES = """
CREATE OR REPLACE FUNCTION organizations_config_bump() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE organizations_organization SET config_version = config_version + 1 WHERE id = OLD.organization_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE organizations_organization SET config_version = config_version + 1 WHERE id = NEW.organization_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER organizations_fieldmapping_config
    AFTER INSERT OR UPDATE OR DELETE ON organizations_fieldmapping
    FOR EACH ROW EXECUTE FUNCTION organizations_config_bump();
CREATE OR REPLACE FUNCTION organizations_config_keep() RETURNS trigger AS $$
BEGIN
    -- A save of an Organization read before the last bump never moves the version back.
    NEW.config_version := GREATEST(NEW.config_version, OLD.config_version);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER organizations_organization_config_keep
    BEFORE UPDATE ON organizations_organization
    FOR EACH ROW EXECUTE FUNCTION organizations_config_keep();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS organizations_fieldmapping_config ON organizations_fieldmapping;
DROP FUNCTION IF EXISTS organizations_config_bump();
DROP TRIGGER IF EXISTS organizations_organization_config_keep ON organizations_organization;
DROP FUNCTION IF EXISTS organizations_config_keep();
"""
SQLITE = [
    f"CREATE TRIGGER organizations_fieldmapping_config_{op.lower()} AFTER {op} "  # noqa: S608
    "ON organizations_fieldmapping BEGIN UPDATE organizations_organization "
    f"SET config_version = config_version + 1 WHERE id IN ({ids}); END"
    for op, ids in (
        ("INSERT", "NEW.organization_id"),
        ("UPDATE", "OLD.organization_id, NEW.organization_id"),
        ("DELETE", "OLD.organization_id"),
    )
] + [
    "CREATE TRIGGER organizations_organization_config_keep AFTER UPDATE "
    "ON organizations_organization WHEN NEW.config_version < OLD.config_version "
    "BEGIN UPDATE organizations_organization SET config_version = OLD.config_version "
    "WHERE id = NEW.id; END"
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES)
    elif vendor == "sqlite":
        for sql in SQLITE:
            schema_editor.execute(sql)
    else:  # pragma: no cover - the supported databases are above
        raise RuntimeError(f"no config_version trigger for {vendor}")


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)
    elif vendor == "sqlite":
        for op in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS organizations_fieldmapping_config_{op}")
        schema_editor.execute("DROP TRIGGER IF EXISTS organizations_organization_config_keep")


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0016_link_type_map"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="config_version",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(create, drop),
    ]
