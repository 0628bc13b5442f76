"""Reconcile now: `sync_reconcile --org ORG | --all [--dry-run] [--since ISO] [--repair]`.

Per organization: the catch-up (changes since the watermark, or `--since`, synced through the
engine), then the drift check (every linked pair compared on both sites), and with
`--repair` the repair of every pair found different. `--dry-run` writes nothing anywhere (no
Jira write, no watermark, no drift record): it prints what would be done. A progress line
goes to stderr.
"""

from __future__ import annotations

import sys
from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from organizations.models import Organization
from sync import drift
from sync.models import IssueLink
from sync.reconcile import reconcile_catch_up


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, else a line per tenth."""

    WIDTH = 30

    def __init__(self, stream, label: str):
        self.stream, self.label = stream, label
        self.tty = stream.isatty() if hasattr(stream, "isatty") else False
        self.shown = -1
        self.last = ""

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            filled = int(self.WIDTH * min(done, total) / total)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            line = f"{self.label} [{bar}] {done}/{total}"
            tenth = 10 * done // total
        else:
            line, tenth = f"{self.label} {done}…", 0
        self.last = line
        if self.tty:
            self.stream.write(f"\r{line}\033[K")
            self.stream.flush()
        elif tenth != self.shown:
            self.shown = tenth
            self.stream.write(line + "\n")

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")


class Command(BaseCommand):
    help = "Reconcile organizations now: catch-up, drift check and (--repair) drift repair."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--org", help="One organization's id, e.g. org-123")
        which.add_argument(
            "--all", dest="every", action="store_true", help="Every enabled organization"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; write nothing"
        )
        parser.add_argument(
            "--since", help="Catch up on changes since this ISO time (instead of the watermark)"
        )
        parser.add_argument(
            "--repair", action="store_true", help="Repair every pair the drift check finds"
        )

    def handle(self, *args, org, every, dry_run, since, repair, **options):
        when = self._since(since)
        if org:
            organizations = list(Organization.objects.filter(public_id=org))
            if not organizations:
                raise CommandError(f"No organization with id {org!r}")
        else:
            organizations = list(Organization.objects.filter(enabled=True).order_by("pk"))
        if dry_run:
            self.stdout.write("Dry run: nothing is written anywhere.")
        for organization in organizations:
            self.stdout.write(f"{organization.public_id} ({organization.name})")
            self._catch_up(organization, when, dry_run)
            report = self._drift(organization, dry_run)
            if repair and not report.skipped:
                self._repair(organization, report, dry_run)

    def _since(self, text: str | None):
        if not text:
            return None
        when = parse_datetime(text)
        if when is None:
            raise CommandError(f"--since: not an ISO date and time: {text!r}")
        return when if timezone.is_aware(when) else when.replace(tzinfo=UTC)

    def _progress(self, label: str) -> Progress:
        return Progress(getattr(self.stderr, "_out", sys.stderr), label)

    def _catch_up(self, organization: Organization, since, dry_run: bool) -> None:
        bar = self._progress("  catch-up")
        try:
            report = reconcile_catch_up(
                organization=organization, since=since, dry_run=dry_run, progress=bar
            )
        finally:
            bar.close()
        verb = "would heal" if dry_run else "healed"
        self.stdout.write(
            f"  catch-up: {report.searched} searches, {report.examined} issues examined, "
            f"{verb} {report.healed} (created {report.created})"
        )
        for line in report.changes:
            self.stdout.write(f"    {line}")
        for line in report.errors:
            self.stdout.write(f"    error: {line}")
        if report.stopped:
            self.stdout.write(f"    stopped: {report.stopped}")

    def _drift(self, organization: Organization, dry_run: bool) -> drift.DriftReport:
        bar = self._progress("  drift check")
        try:
            report = drift.drift_check(organization=organization, dry_run=dry_run, progress=bar)
        finally:
            bar.close()
        if report.skipped:
            self.stdout.write(f"  drift check: skipped ({report.skipped})")
            return report
        self.stdout.write(
            f"  drift check: {report.pairs} pairs, {report.drifted} differ, {report.gone} gone, "
            f"{report.busy} busy; {report.calls} Jira calls, {report.seconds:.1f} s"
        )
        links = {
            link.pk: link
            for link in IssueLink.objects.filter(pk__in=list(report.found)).order_by("pk")
        }
        for pk, differences in report.found.items():
            for d in differences:
                self.stdout.write(f"    {links[pk]}: {d.kind} {d.field}")
        return report

    def _repair(self, organization: Organization, report: drift.DriftReport, dry_run) -> None:
        links = IssueLink.objects.select_related("organization").filter(pk__in=list(report.found))
        bar = self._progress("  repair")
        try:
            outcomes = drift.drift_repair(links=links.order_by("pk"), dry_run=dry_run, progress=bar)
        finally:
            bar.close()
        for outcome in outcomes:
            winners = ", ".join(f"{name}: {side}'s value" for name, side in outcome.winners.items())
            detail = "; ".join(x for x in (winners, outcome.message) if x)
            verb = f"would be {outcome.action}" if dry_run else outcome.action
            self.stdout.write(f"    {outcome.pair}: {verb}" + (f" ({detail})" if detail else ""))
        done = sum(o.action in ("repaired", "closed") for o in outcomes)
        self.stdout.write(
            f"  repair: {done} of {len(outcomes)} pairs {'would be ' if dry_run else ''}repaired"
        )
