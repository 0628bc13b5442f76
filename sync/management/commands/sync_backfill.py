"""Push existing local issues to a partner: `sync_backfill <org-id> [--jql ...] [--dry-run]`.

Idempotent, so an interrupted run is resumed by running it again: issues already in step
cost one read and no write. A rate-limited partner is waited for (`Retry-After`).
"""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from jiraapi.errors import JiraError
from organizations.models import Organization
from sync import engine, peer
from sync.jobs import job_build
from sync.leases import LeaseBusy
from sync.mapping import PUSH
from sync.retries import backoff_seconds
from sync.sites import local_client


class Command(BaseCommand):
    help = "Push existing local issues of an organization's mapped projects to the partner."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="The organization's id, e.g. org-123")
        parser.add_argument("--jql", help="Which local issues (default: all mapped projects)")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; write nothing"
        )
        parser.add_argument("--max-tries", type=int, default=8)

    def handle(self, *args, organization, jql, dry_run, max_tries, **options):
        org = Organization.objects.filter(public_id=organization).first()
        if org is None:
            raise CommandError(f"No organization with id {organization!r}")
        mappings = {m.local_project_key: m for m in org.project_mappings.all()}
        if not mappings:
            raise CommandError(f"{org.public_id} has no project mappings")
        projects = ", ".join(f'"{k}"' for k in sorted(mappings))
        scope = f"project in ({projects})"
        query = f"({jql}) AND {scope}" if jql else scope
        source = local_client()
        keys = [i["key"] for i in source.search(f"{query} ORDER BY key ASC", fields=["summary"])]
        totals = {"create": 0, "update": 0, "unchanged": 0, "error": 0}
        self.stdout.write(f"{len(keys)} local issues match: {query}")
        for index, key in enumerate(keys, start=1):
            outcome = self._one(mappings, source, key, dry_run, max_tries)
            totals[outcome[0]] += 1
            self._progress(index, len(keys), key, outcome[1])
        self.stderr.write("")
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            f"Done: {totals['create']} {verb} created, {totals['update']} {verb} updated, "
            f"{totals['unchanged']} already in step, {totals['error']} failed."
        )

    def _one(self, mappings, source, key, dry_run, max_tries):
        for attempt in range(1, max_tries + 1):
            try:
                issue = source.get_issue(key)
                job = job_build(
                    project_mapping=mappings[issue["fields"]["project"]["key"]],
                    way=PUSH,
                    issue_id=str(issue["id"]),
                    issue=issue,
                    comments_changed=True,
                )
                if dry_run and job.organization.is_app:
                    change = peer.peer_preview(job)
                elif dry_run:
                    change = engine.preview(job)
                elif job.organization.is_app:  # Scenario B: sent to the partner's install
                    change = peer.peer_publish(job)
                else:
                    change = engine.sync_issue(job)
            except LeaseBusy:
                time.sleep(0.5)
                continue
            except JiraError as exc:
                if exc.retryable and attempt < max_tries:
                    # The task's policy: backoff with jitter, never sooner than Retry-After.
                    time.sleep(backoff_seconds(attempt, exc.retry_after))
                    continue
                return "error", f"{key}: {exc.jira_message}"
            if change.action == "create":
                return "create", f"{key}: create ({', '.join(change.fields)})"
            if change.fields or change.comments:
                detail = ", ".join(change.fields + [f"comment {c}" for c in change.comments])
                return "update", f"{key}: update ({detail})"
            return "unchanged", f"{key}: in step"
        return "error", f"{key}: gave up after {max_tries} tries"

    def _progress(self, done: int, total: int, key: str, line: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        self.stdout.write(line)
        if sys.stderr.isatty():
            self.stderr.write(f"\r[{bar}] {done}/{total}", ending="")
        else:
            self.stderr.write(f"[{bar}] {done}/{total}")
