"""Secret handling (issue 11): when each partner secret was set, and a list of rotated-out
incoming secrets, each valid until its own grace period ends."""

import json

from django.db import migrations, models

import core.fields


def previous_to_list(apps, schema_editor):
    Organization = apps.get_model("organizations", "Organization")
    for org in Organization.objects.exclude(previous_incoming_secret="").exclude(
        previous_secret_valid_until=None
    ):
        org.previous_incoming_secrets = json.dumps(
            [
                {
                    "secret": org.previous_incoming_secret,
                    "validUntil": org.previous_secret_valid_until.isoformat(),
                }
            ]
        )
        org.save(update_fields=["previous_incoming_secrets"])


def list_to_previous(apps, schema_editor):
    """Backwards: keep the latest rotated-out secret (the old schema holds one)."""
    Organization = apps.get_model("organizations", "Organization")
    for org in Organization.objects.exclude(previous_incoming_secrets=""):
        entries = json.loads(org.previous_incoming_secrets)
        if entries:
            org.previous_incoming_secret = entries[-1]["secret"]
            org.save(update_fields=["previous_incoming_secret"])


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0003_sync_policies"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="remote_handshake_token_set_at",
            field=models.DateTimeField(
                blank=True, null=True, verbose_name="partner webhook secret set"
            ),
        ),
        migrations.AddField(
            model_name="organization",
            name="remote_token_set_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="API token set"),
        ),
        migrations.AddField(
            model_name="organization",
            name="previous_incoming_secrets",
            field=core.fields.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(previous_to_list, list_to_previous),
        migrations.RemoveField(
            model_name="organization",
            name="previous_incoming_secret",
        ),
    ]
