"""`manage.py reencrypt_secrets`: after putting a new key first in FIELD_ENCRYPTION_KEYS,
re-encrypt every stored secret with it; then the old key can be removed."""

from django.core.management.base import BaseCommand, CommandError

from core.fields import reencrypt_all


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            counts = reencrypt_all()
        except ValueError as exc:  # the message never carries a secret
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(
            f"re-encrypted {counts['reencrypted']}, already current {counts['current']}"
        )
