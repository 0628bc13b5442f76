"""Delete finished deliveries and their sync events older than the retention:
`prune_history [--days N] [--batch-size N]`.

Failed, dead and unfinished deliveries (and their sync events) are kept until resolved.
Beat runs the same pruning every RETENTION_PRUNE_SECONDS; this runs it to the end, now.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webhooks.retention import history_prune


class Command(BaseCommand):
    help = "Delete finished webhook deliveries and sync events older than RETENTION_DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="Keep this many days (RETENTION_DAYS)")
        parser.add_argument("--batch-size", type=int, help="Rows a transaction")

    def handle(self, *args, days, batch_size, **options):
        days = settings.RETENTION_DAYS if days is None else days
        if days <= 0:
            raise CommandError("Retention is off (RETENTION_DAYS=0); pass --days N to prune.")
        result = history_prune(
            older_than=timezone.now() - timedelta(days=days),
            batch_size=batch_size or settings.RETENTION_BATCH_SIZE,
        )
        self.stdout.write(
            f"Deleted {result.deliveries} deliveries and {result.sync_events} sync events "
            f"older than {days} days."
        )
