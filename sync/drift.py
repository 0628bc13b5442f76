"""The drift check and its repair (DESIGN.md section 10; issue 14, part 2).

The drift check is the slow sweep behind the catch-up: it reads every linked pair of an
organization from both sites, in pages (one search per side for up to `SYNC_DRIFT_PAGE_SIZE`
pairs, JQL `id in (...)` with the mapped fields and the comments), compares them field by
field the way a sync would (each value crossed to the other site with the pair's value maps,
flavors and users, then compared by the field registry), and comments by their hashes. A
pair found different is read again by id on both sides before it is recorded (search may
lag behind writes); an issue missing from a search is asked for by id, and only a 404 makes
the pair "gone". Findings are `Drift` rows (one per field, comment or gone side), replaced
by each check; `DriftCheck` keeps the last check's figures per organization.

Repair brings a pair equal through the engine: per differing field the side whose value
stands is the one that changed since the pair's agreed state; when both did (or neither),
the organization's conflict policy decides (the later change by each side's changelog,
unless the policy says ours or the partner's wins). The agreed state is set so the engine
carries exactly that value, then `engine.sync_issue` writes it under the pair's lease with
its echo locks, so the webhooks the repair causes come back as echoes. A gone issue is
handled as its lost delete webhook would have been (the delete policy; for a push-only
partner, the target-gone policy).

Scenario B (organizations connected app to app) is not checked here: the partner's Jira is
not reachable from this install; each install's catch-up reconciles its own side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jiraapi import adf
from jiraapi.client import JiraClient, counting_calls
from jiraapi.errors import JiraNotFound
from organizations.models import Organization, ProjectMapping

from . import echo, engine, fields
from .fields import Unmatched, Unresolved
from .jobs import Job, job_build
from .leases import LeaseBusy, issue_link_lease
from .mapping import PULL, PUSH, FieldPair, field_pairs
from .models import REFUSED, Drift, DriftCheck, DriftKind, IssueLink, LinkStatus, Side
from .plan import conflict_winner, crossing
from .sites import local_client, remote_client

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
# Longest text kept of a value shown on the dashboard.
SHOWN_CHARS = 500


@dataclass(frozen=True)
class Difference:
    kind: str  # DriftKind
    field: str  # the local field id, "comment ...", or the side whose issue is gone
    local_value: Any = None
    remote_value: Any = None


@dataclass
class DriftReport:
    """What a drift check of one organization found (and, not a dry run, recorded)."""

    organization: str
    pairs: int = 0
    drifted: int = 0
    gone: int = 0
    busy: int = 0  # pairs being synced, or changed within the grace: looked at next time
    busy_ids: list[int] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    skipped: str = ""  # why the organization was not checked
    found: dict[int, list[Difference]] = field(default_factory=dict)


@dataclass
class RepairOutcome:
    """What repairing one pair did (or, in a dry run, would do)."""

    link: int
    pair: str
    action: str  # repaired | in_step | closed | busy | skipped
    winners: dict[str, str] = field(default_factory=dict)  # field -> the side whose value stood
    message: str = ""
    remaining: int = 0  # differences found again after the repair


def drift_checkable(organization: Organization) -> str:
    """Why an organization's pairs are not drift-checked ("" when they are)."""
    if not organization.enabled:
        return "the organization is disabled"
    if organization.is_app:
        return (
            "connected app to app (Scenario B): the partner's Jira is not reachable from here; "
            "each install's catch-up reconciles its own side"
        )
    if not organization.remote_base_url:
        return "no partner Jira is configured"
    return ""


def _linked(organization: Organization):
    return (
        IssueLink.objects.filter(organization=organization, status=LinkStatus.LINKED)
        .exclude(local_issue_id=None)
        .exclude(remote_issue_id=None)
        .prefetch_related("comments")
        .order_by("pk")
    )


class _Comparer:
    """An organization's pairs compared as a sync would: its field pairs (with the ways each
    travels), and per project mapping and way a job whose crossing maps the values (its user
    look-ups cached for the whole check)."""

    def __init__(self, organization: Organization):
        self.organization = organization
        self.ways = (PUSH, PULL) if organization.is_bidirectional else (PUSH,)
        self.pairs: dict[str, tuple[FieldPair, frozenset[str]]] = {}
        for way in self.ways:
            for pair in field_pairs(organization, way):
                known = self.pairs.get(pair.local)
                self.pairs[pair.local] = (pair, (known[1] if known else frozenset()) | {way})
        self.mappings = {m.local_project_key: m for m in organization.project_mappings.all()}
        self.local: JiraClient = local_client()
        self.remote: JiraClient = remote_client(organization)
        self._jobs: dict[tuple[str, str], Job] = {}

    def names(self, side: str) -> list[str]:
        mapped = [p.local if side == Side.LOCAL else p.remote for p, _ in self.pairs.values()]
        return fields.rest_fields({"project", "updated", "comment", *mapped})

    def mapping_of(self, local_issue: dict) -> ProjectMapping | None:
        project = ((local_issue.get("fields") or {}).get("project") or {}).get("key")
        return self.mappings.get(project or "")

    def job(self, mapping: ProjectMapping, way: str) -> Job:
        key = (mapping.local_project_key, way)
        if key not in self._jobs:
            self._jobs[key] = job_build(project_mapping=mapping, way=way, issue_id="0")
        return self._jobs[key]

    def client(self, side: str) -> JiraClient:
        return self.local if side == Side.LOCAL else self.remote

    # --- comparing one pair ------------------------------------------------------------------

    def differences(
        self,
        link: IssueLink,
        local_issue: dict,
        remote_issue: dict,
        comments: dict[str, list[dict]] | None = None,
    ) -> list[Difference]:
        mapping = self.mapping_of(local_issue)
        if mapping is None:
            return []  # its project is no longer mapped: not synced, so not drift
        lf, rf = local_issue.get("fields") or {}, remote_issue.get("fields") or {}
        refused = link.state.get(REFUSED, {})
        found = []
        for name, (pair, ways) in self.pairs.items():
            if pair.remote in refused.get(Side.REMOTE, {}) or pair.local in refused.get(
                Side.LOCAL, {}
            ):
                continue  # the site refuses the value: the sync reports it, not drift
            lv, rv = fields.read(pair.local, lf), fields.read(pair.remote, rf)
            if not self._agree(mapping, pair, ways, lv, rv):
                found.append(Difference(DriftKind.FIELD, name, lv, rv))
        if comments is None:
            comments = {
                Side.LOCAL: self._comments(local_issue, Side.LOCAL),
                Side.REMOTE: self._comments(remote_issue, Side.REMOTE),
            }
        return found + self._comment_differences(link, comments)

    def _agree(self, mapping, pair: FieldPair, ways, lv: Any, rv: Any) -> bool:
        """Equal once crossed, in either direction the pair travels."""
        for way in ways:
            job = self.job(mapping, way)
            value, other = (lv, rv) if way == PUSH else (rv, lv)
            target = pair.target(way)
            wanted = fields.kind_of(target).cross(value, crossing(job, pair))
            if isinstance(wanted, Unmatched):
                return True  # a user with no counterpart: the unmapped-user policy rules
            if isinstance(wanted, Unresolved):
                return True  # a parent not synced there: the sync records it, not drift
            if fields.same(target, wanted, other):
                return True
        return False

    def _comments(self, issue: dict, side: str) -> list[dict]:
        """The issue's comments from its `comment` field; all of them read when the field
        holds only the first page."""
        page = (issue.get("fields") or {}).get("comment")
        if isinstance(page, dict):
            shown = list(page.get("comments") or [])
            if int(page.get("total") or 0) <= len(shown):
                return shown
        return self.client(side).get_comments(str(issue["id"]))

    def _comment_differences(
        self, link: IssueLink, comments: dict[str, list[dict]]
    ) -> list[Difference]:
        by_id = {side: {str(c.get("id")): c for c in comments[side]} for side in comments}
        linked: dict[str, set[str]] = {Side.LOCAL: set(), Side.REMOTE: set()}
        found = []
        for cl in link.comments.all():
            ends = {}
            for side in (Side.LOCAL, Side.REMOTE):
                cid = getattr(cl, f"{side}_comment_id")
                linked[side].add(str(cid))
                ends[side] = by_id[side].get(str(cid)) if cid else None
            same = all(
                ends[side] is not None
                and fields.fingerprint("comment", ends[side].get("body"))
                == getattr(cl, f"{side}_hash")
                for side in ends
            )
            if not same:
                found.append(
                    Difference(
                        DriftKind.COMMENT,
                        f"comment {cl.local_comment_id or '-'} / {cl.remote_comment_id or '-'}",
                        _shown(ends[Side.LOCAL]),
                        _shown(ends[Side.REMOTE]),
                    )
                )
        shares = self.organization.copy_restricted_comments
        for side, way in ((Side.LOCAL, PUSH), (Side.REMOTE, PULL)):
            if way not in self.ways:
                continue
            for cid, comment in by_id[side].items():
                if cid in linked[side] or (not shares and fields.comment_restricted(comment)):
                    continue
                text = _shown(comment)
                found.append(
                    Difference(
                        DriftKind.COMMENT,
                        f"comment {cid} ({side}, not copied)",
                        text if side == Side.LOCAL else None,
                        text if side == Side.REMOTE else None,
                    )
                )
        return found


def _shown(comment: dict | None) -> str | None:
    if comment is None:
        return None
    body = comment.get("body")
    text = adf.adf_to_wiki(body) if isinstance(body, dict) else str(body or "")
    return text[:SHOWN_CHARS]


def _get(client: JiraClient, issue_id: str, names: list[str] | None = None) -> dict | None:
    """The issue by id, or None when its site answers 404 (it is gone)."""
    try:
        return client.get_issue(issue_id, fields=names)
    except JiraNotFound:
        return None


def _search(client: JiraClient, ids: list[str], names: list[str]) -> dict[str, dict]:
    numeric = [i for i in ids if i.isdigit()]  # ids are Jira's numbers; nothing else in JQL
    if not numeric:
        return {}
    jql = f"id in ({','.join(numeric)})"
    return {str(i["id"]): i for i in client.search(jql, fields=names, page_size=len(numeric))}


# --- the check ---------------------------------------------------------------------------------


def drift_check(
    *,
    organization: Organization,
    dry_run: bool = False,
    progress: Progress | None = None,
    page_size: int | None = None,
) -> DriftReport:
    """Compare every linked pair of `organization`; record what differs (unless `dry_run`)."""
    report = DriftReport(organization=organization.public_id)
    report.skipped = drift_checkable(organization)
    if report.skipped:
        return report
    started = time.monotonic()
    size = page_size or settings.SYNC_DRIFT_PAGE_SIZE
    links = _linked(organization)
    total = links.count()
    with counting_calls() as calls:
        comparer = _Comparer(organization)
        names = {side: comparer.names(side) for side in (Side.LOCAL, Side.REMOTE)}
        page: list[IssueLink] = []
        for link in links.iterator(chunk_size=size):
            page.append(link)
            if len(page) == size:
                _check_page(comparer, page, names, report)
                page = []
                if progress:
                    progress(report.pairs, total)
        if page:
            _check_page(comparer, page, names, report)
        if progress:
            progress(report.pairs, total)
    report.calls = calls.count
    report.seconds = time.monotonic() - started
    if not dry_run:
        _record(organization, report)
    logger.info(
        "drift.checked",
        extra={
            "organization": organization.public_id,
            "pairs": report.pairs,
            "drifted": report.drifted,
            "gone": report.gone,
            "calls": report.calls,
            "dry_run": dry_run,
        },
    )
    return report


def _check_page(
    comparer: _Comparer, page: list[IssueLink], names: dict, report: DriftReport
) -> None:
    local = _search(comparer.local, [link.local_issue_id for link in page], names[Side.LOCAL])
    remote = _search(comparer.remote, [link.remote_issue_id for link in page], names[Side.REMOTE])
    now = timezone.now()
    recent = now - timedelta(seconds=settings.SYNC_DRIFT_GRACE_SECONDS)
    for link in page:
        report.pairs += 1
        issues = (local.get(str(link.local_issue_id)), remote.get(str(link.remote_issue_id)))
        in_motion = link.lease_until and link.lease_until > now
        if in_motion or any(_changed_since(issue, recent) for issue in issues):
            # A sync is at work on it, or a change is younger than the grace (its webhook
            # may still be on its way): looked at again by the next check.
            report.busy += 1
            report.busy_ids.append(link.pk)
            continue
        found = _pair_differences(comparer, link, *issues, names)
        if found:
            report.found[link.pk] = found
            if any(d.kind == DriftKind.GONE for d in found):
                report.gone += 1
            else:
                report.drifted += 1


def _changed_since(issue: dict | None, moment) -> bool:
    updated = parse_datetime(str(((issue or {}).get("fields") or {}).get("updated") or ""))
    return updated is not None and updated > moment


def _pair_differences(
    comparer: _Comparer,
    link: IssueLink,
    local_issue: dict | None,
    remote_issue: dict | None,
    names: dict,
) -> list[Difference]:
    """The pair's differences, confirmed: an issue missing from a search is asked for by id
    (gone only on a 404), and a pair found different is read again by id on both sides (a
    search may lag behind writes) before it counts."""
    if local_issue is None:
        local_issue = _get(comparer.local, link.local_issue_id, names[Side.LOCAL])
    if remote_issue is None:
        remote_issue = _get(comparer.remote, link.remote_issue_id, names[Side.REMOTE])
    gone = [
        Difference(DriftKind.GONE, side)
        for side, issue in ((Side.LOCAL, local_issue), (Side.REMOTE, remote_issue))
        if issue is None
    ]
    if gone:
        return gone
    if not comparer.differences(link, local_issue, remote_issue):
        return []
    local_issue = _get(comparer.local, link.local_issue_id, names[Side.LOCAL])
    remote_issue = _get(comparer.remote, link.remote_issue_id, names[Side.REMOTE])
    if local_issue is None or remote_issue is None:
        return _pair_differences(comparer, link, local_issue, remote_issue, names)
    comments = {
        Side.LOCAL: comparer.local.get_comments(str(link.local_issue_id)),
        Side.REMOTE: comparer.remote.get_comments(str(link.remote_issue_id)),
    }
    return comparer.differences(link, local_issue, remote_issue, comments)


def _record(organization: Organization, report: DriftReport) -> None:
    now = timezone.now()
    with transaction.atomic():
        DriftCheck.objects.update_or_create(
            organization=organization,
            defaults={
                "checked_at": now,
                "pairs": report.pairs,
                "drifted": report.drifted,
                "gone": report.gone,
                "calls": report.calls,
                "seconds": report.seconds,
                "error": "",
            },
        )
        # What a pair left for next time was found to hold stays listed until then.
        stale = Drift.objects.filter(organization=organization).exclude(
            issue_link_id__in=report.busy_ids
        )
        _replace(stale, organization, report.found, now)


def _replace(rows, organization: Organization, found: dict[int, list[Difference]], now) -> None:
    """Make `rows` (the recorded drift of what was looked at) what `found` says."""
    existing = {(d.issue_link_id, d.kind, d.field): d for d in rows}
    keep = set()
    for link_id, differences in found.items():
        for d in differences:
            key = (link_id, d.kind, d.field)
            keep.add(key)
            values = {
                "local_value": fields.without_nul(d.local_value),
                "remote_value": fields.without_nul(d.remote_value),
                "checked_at": now,
            }
            row = existing.get(key)
            if row is None:
                Drift.objects.create(
                    organization=organization,
                    issue_link_id=link_id,
                    kind=d.kind,
                    field=d.field,
                    **values,
                )
            else:
                Drift.objects.filter(pk=row.pk).update(**values)
    gone = [row.pk for key, row in existing.items() if key not in keep]
    Drift.objects.filter(pk__in=gone).delete()


def drift_check_all(*, dry_run: bool = False) -> list[DriftReport]:
    """Every enabled organization's drift check (the periodic task)."""
    reports = []
    for organization in Organization.objects.filter(enabled=True).order_by("pk"):
        try:
            reports.append(drift_check(organization=organization, dry_run=dry_run))
        except Exception as exc:  # one partner's outage does not stop the others' checks
            logger.exception("drift.check_failed", extra={"organization": organization.public_id})
            if not dry_run:
                DriftCheck.objects.update_or_create(
                    organization=organization,
                    defaults={"checked_at": timezone.now(), "error": str(exc)[:2000]},
                )
    return reports


# --- repair ------------------------------------------------------------------------------------


def issue_link_repair(*, link: IssueLink, dry_run: bool = False) -> RepairOutcome:
    """Bring one pair equal (see the module's docstring); `dry_run`: decide, write nothing."""
    organization = link.organization
    outcome = RepairOutcome(link=link.pk, pair=str(link), action="skipped")
    outcome.message = drift_checkable(organization)
    if outcome.message:
        return outcome
    if link.status != LinkStatus.LINKED or not (link.local_issue_id and link.remote_issue_id):
        outcome.message = f"the pair is {link.get_status_display().lower()}"
        _forget(link, dry_run)
        return outcome
    comparer = _Comparer(organization)
    local_issue = _get(comparer.local, link.local_issue_id)
    remote_issue = _get(comparer.remote, link.remote_issue_id)
    try:
        if local_issue is None or remote_issue is None:
            return _repair_gone(comparer, link, local_issue, remote_issue, outcome, dry_run)
        return _repair_fields(comparer, link, local_issue, remote_issue, outcome, dry_run)
    except LeaseBusy:
        outcome.action, outcome.message = "busy", "a sync is at work on the pair; try again"
        return outcome


def _repair_fields(
    comparer: _Comparer,
    link: IssueLink,
    local_issue: dict,
    remote_issue: dict,
    outcome: RepairOutcome,
    dry_run: bool,
) -> RepairOutcome:
    differences = comparer.differences(link, local_issue, remote_issue)
    mapping = comparer.mapping_of(local_issue)
    if not differences or mapping is None:
        outcome.action = "in_step"
        _forget(link, dry_run)
        return outcome
    changelogs: dict[str, list[dict]] = {}
    push = _with_issue(comparer.job(mapping, PUSH), local_issue)
    for d in differences:
        if d.kind == DriftKind.FIELD:
            pair, ways = comparer.pairs[d.field]
            outcome.winners[d.field] = _winner(push, link, pair, ways, d, remote_issue, changelogs)
    comments = any(d.kind == DriftKind.COMMENT for d in differences)
    outcome.action = "repaired"
    if dry_run:
        return outcome
    with issue_link_lease(link) as held:
        for name, winner in outcome.winners.items():
            pair, _ = comparer.pairs[name]
            loser = Side.REMOTE if winner == Side.LOCAL else Side.LOCAL
            names = {Side.LOCAL: pair.local, Side.REMOTE: pair.remote}
            current = {
                Side.LOCAL: fields.read(pair.local, local_issue["fields"]),
                Side.REMOTE: fields.read(pair.remote, remote_issue["fields"]),
            }
            # The engine carries a value whose agreed state it does not know, and writes
            # over a target value that is the agreed one (no conflict to settle again).
            held.side_state(winner).pop(names[winner], None)
            held.side_state(loser)[names[loser]] = current[loser]
        held.save(update_fields=["state", "updated_at"])
    winners = set(outcome.winners.values())
    if Side.LOCAL in winners or comments:
        _resync(mapping, PUSH, str(link.local_issue_id), local_issue)
    if Side.REMOTE in winners or (comments and PULL in comparer.ways):
        remote_id = str(link.remote_issue_id)
        _resync(mapping, PULL, remote_id, comparer.remote.get_issue(remote_id))  # after the push
    return _recheck(comparer, link, outcome)


def _resync(mapping, way: str, issue_id: str, issue: dict) -> None:
    """Sync one side of a pair to the other through the engine (its echo locks)."""
    job = job_build(
        project_mapping=mapping, way=way, issue_id=issue_id, issue=issue, comments_changed=True
    )
    engine.sync_issue(job, notes=("drift repair",))


def _with_issue(job: Job, issue: dict) -> Job:
    return replace(job, issue_id=str(issue["id"]), issue_key=str(issue.get("key")), issue=issue)


def _winner(
    push: Job,
    link: IssueLink,
    pair: FieldPair,
    ways: frozenset[str],
    d: Difference,
    remote_issue: dict,
    changelogs: dict,
) -> str:
    """The side whose value stands: the only way the field travels; else the side that
    changed since the pair's agreed state; when both did (or neither), the conflict policy."""
    if ways == {PUSH}:
        return Side.LOCAL
    if ways == {PULL}:
        return Side.REMOTE
    moved = {}
    for side, name, value in (
        (Side.LOCAL, pair.local, d.local_value),
        (Side.REMOTE, pair.remote, d.remote_value),
    ):
        agreed = link.state.get(side, {})
        moved[side] = name not in agreed or not fields.same(name, value, agreed[name])
    if moved[Side.LOCAL] != moved[Side.REMOTE]:
        return Side.LOCAL if moved[Side.LOCAL] else Side.REMOTE
    return str(conflict_winner(push, link, pair, remote_issue.get("fields") or {}, changelogs))


def _repair_gone(
    comparer: _Comparer,
    link: IssueLink,
    local_issue: dict | None,
    remote_issue: dict | None,
    outcome: RepairOutcome,
    dry_run: bool,
) -> RepairOutcome:
    """A side's issue is gone (404): what its lost delete webhook would have done."""
    outcome.action = "closed"
    if local_issue is None and remote_issue is None:
        outcome.message = "both issues are gone: the pair is closed"
        if not dry_run:
            IssueLink.objects.filter(pk=link.pk).update(status=LinkStatus.DELETED)
            _forget(link, dry_run)
        return outcome
    present = local_issue or remote_issue
    if local_issue is not None:
        mapping = comparer.mapping_of(local_issue)
    else:
        mapping = _mapping_by_remote(comparer, present)
    if mapping is None:
        outcome.action, outcome.message = "skipped", "its project is no longer mapped"
        return outcome
    if local_issue is None:
        way, outcome.message = PUSH, "our issue is gone: the local delete policy applies"
    elif PULL in comparer.ways:
        way, outcome.message = PULL, "the partner's issue is gone: its delete policy applies"
    else:
        way = None
        outcome.message = "the partner's issue is gone: the target-gone policy applies"
    if dry_run:
        return outcome
    if way is None:
        job = job_build(
            project_mapping=mapping,
            way=PUSH,
            issue_id=str(link.local_issue_id),
            issue=local_issue,
            comments_changed=True,
        )
        engine.sync_target_gone(job)
    else:
        side = Side.LOCAL if way == PUSH else Side.REMOTE
        issue_id = str(link.local_issue_id if way == PUSH else link.remote_issue_id)
        job = job_build(
            project_mapping=mapping,
            way=way,
            issue_id=issue_id,
            issue=None,
            deleted_for=echo.echo_deletion_by(side=side, issue_id=issue_id),
        )
        engine.sync_issue(job, notes=("drift repair: the issue is gone at its site",))
    _forget(link, dry_run)
    return outcome


def _mapping_by_remote(comparer: _Comparer, remote_issue: dict) -> ProjectMapping | None:
    project = ((remote_issue.get("fields") or {}).get("project") or {}).get("key")
    for mapping in comparer.mappings.values():
        if mapping.remote_project_key == project:
            return mapping
    return None


def _recheck(comparer: _Comparer, link: IssueLink, outcome: RepairOutcome) -> RepairOutcome:
    """The pair read again after the repair; what still differs stays listed."""
    link = IssueLink.objects.prefetch_related("comments").get(pk=link.pk)
    names = {side: comparer.names(side) for side in (Side.LOCAL, Side.REMOTE)}
    found = _pair_differences(comparer, link, None, None, names)
    outcome.remaining = len(found)
    _replace(
        Drift.objects.filter(issue_link=link), link.organization, {link.pk: found}, timezone.now()
    )
    logger.info(
        "drift.repaired",
        extra={
            "organization": link.organization.public_id,
            "link": link.pk,
            "winners": outcome.winners,
            "remaining": outcome.remaining,
        },
    )
    return outcome


def _forget(link: IssueLink, dry_run: bool) -> None:
    if not dry_run:
        Drift.objects.filter(issue_link=link).delete()


def drift_repair(
    *,
    organization: Organization | None = None,
    links: Iterable[IssueLink] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[RepairOutcome]:
    """Repair every pair with recorded drift: of one organization, or of all; or `links`."""
    if links is None:
        recorded = Drift.objects.all()
        if organization is not None:
            recorded = recorded.filter(organization=organization)
        ids = sorted(set(recorded.values_list("issue_link_id", flat=True)))
        links = IssueLink.objects.select_related("organization").filter(pk__in=ids).order_by("pk")
    links = list(links)
    outcomes = []
    for done, link in enumerate(links, start=1):
        outcomes.append(issue_link_repair(link=link, dry_run=dry_run))
        if progress:
            progress(done, len(links))
    return outcomes
