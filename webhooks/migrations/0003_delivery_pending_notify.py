"""A trigger announcing every delivery stored as pending (PostgreSQL only): NOTIFY on the
relay's channel with `<id>:<organization id or empty>`, delivered at commit, at no extra
round trip for the web request. The relay (webhooks/relay.py) listens. Other databases: no-op.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION webhooks_delivery_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'webhook_delivery_pending',
        NEW.id::text || ':' || coalesce(NEW.organization_id::text, '')
    );
    RETURN NULL;
END
$$;
CREATE TRIGGER webhooks_delivery_notify
    AFTER INSERT ON webhooks_webhookdelivery
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION webhooks_delivery_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS webhooks_delivery_notify ON webhooks_webhookdelivery;
DROP FUNCTION IF EXISTS webhooks_delivery_notify();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0002_delivery_calls")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
