"""Every organization gets an incoming secret: rows made before secrets existed get one here."""

from django.db import migrations

from core.crypto import generate_secret


def generate_missing_secrets(apps, schema_editor):
    Organization = apps.get_model("organizations", "Organization")
    for organization in Organization.objects.filter(incoming_secret=""):
        organization.incoming_secret = generate_secret()
        organization.save(update_fields=["incoming_secret"])


class Migration(migrations.Migration):
    dependencies = [("organizations", "0001_initial")]

    operations = [migrations.RunPython(generate_missing_secrets, migrations.RunPython.noop)]
