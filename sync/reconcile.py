"""Reconciliation catch-up: heal what webhooks missed (README, "Reconciliation").

Per organization, project mapping and side, one search asks the site which issues changed
since the side's watermark (less an overlap: clock skew and search index lag); each issue
found is compared, in memory, with its link's agreed state (the mapped fields'
fingerprints, the comments' hashes). Only an issue that differs, or that no link knows yet,
costs more calls: it is synced by the path a webhook's event takes (`issue_catch_up`: the
issue read now, echo locks, the pair's lease), so a heal neither loops nor creates twice.

An idle side costs one search per period. A 429 stops the run (`Retry-After` is longer than
a worker should wait): its watermarks stay, and the next run picks up from there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jiraapi.client import JiraClient
from jiraapi.errors import JiraError, JiraRateLimited
from organizations.models import Organization, ProjectMapping

from . import fields
from .attachments import attachments_differ
from .leases import LeaseBusy
from .mapping import PULL, PUSH, SIDES, field_pairs
from .models import (
    CLOSED_LINK_STATUSES,
    LINK_PROPERTY,
    CommentLink,
    IssueLink,
    LinkStatus,
    ReconcileMark,
    ReconcileRun,
    Side,
)
from .relations import links_differ
from .services import issue_catch_up
from .sites import local_client, remote_client

logger = logging.getLogger(__name__)

HEAL_NOTE = "healed by reconciliation: this change's webhook never reached the service"
PAGE_SIZE = 100


@dataclass
class CatchUpReport:
    """What one catch-up run did (or, dry, would do)."""

    searched: int = 0  # Jira searches made
    examined: int = 0  # issues the searches returned
    healed: int = 0  # issues synced (written or sent) because they differed
    created: int = 0  # of those, issues created on the other side
    per_side: dict = field(default_factory=dict)  # side -> the same four counts
    errors: list[str] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early ("" when it went through)
    dry_run: bool = False
    changes: list[str] = field(default_factory=list)  # "LOC-1: update (summary)" lines

    def side(self, side: str) -> dict:
        return self.per_side.setdefault(
            side, {"searched": 0, "examined": 0, "healed": 0, "created": 0}
        )

    def count(self, side: str, name: str, n: int = 1) -> None:
        setattr(self, name, getattr(self, name) + n)
        self.side(side)[name] += n


class _Stop(Exception):
    """The site asked us to wait (429): the rest of the run waits for the next period."""


def reconcile_catch_up(
    *,
    organization: Organization,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> CatchUpReport:
    """Ask each side of each project mapping what changed since its watermark (or `since`)
    and sync what differs from the agreed state; `dry_run`: report what would be synced,
    write nothing (no Jira write, no watermark). `progress(done, total)`: after each issue
    examined (total: the issues found so far, None before the first search answers)."""
    report = CatchUpReport(dry_run=dry_run)
    started = timezone.now()
    if progress is not None:
        progress(0, None)
    total = 0
    done = 0
    for project_mapping, way in _sides(organization):
        side = SIDES[way][0]
        report.side(side)
        mark = ReconcileMark.objects.filter(project_mapping=project_mapping, side=side).first()
        # Changes younger than the grace are left to their webhook (perhaps still queued).
        upto = started - timedelta(seconds=settings.SYNC_RECONCILE_GRACE_SECONDS)
        frm = since or (
            mark.watermark
            if mark is not None
            else upto - timedelta(seconds=settings.SYNC_RECONCILE_SECONDS)
        )
        try:
            client = local_client() if side == Side.LOCAL else remote_client(organization)
            found = _changed(client, project_mapping, side, frm, started, report)
        except JiraRateLimited as exc:
            report.stopped = _stopped(side, exc)
            break
        except JiraError as exc:
            report.errors.append(f"{side} search: {exc.jira_message}")
            continue
        total += len(found)
        pending = 0  # issues left for the next run: the watermark must not pass them
        pairs = field_pairs(organization, way)
        links = _links(organization, side, [str(i["id"]) for i in found])
        try:
            for issue in found:
                done += 1
                report.count(side, "examined")
                if progress is not None:
                    progress(done, total)
                updated = parse_datetime(str(issue["fields"].get("updated") or ""))
                if updated is not None and updated > upto:
                    pending += 1
                    continue
                link = links.get(str(issue["id"]))
                pending += _one(project_mapping, way, issue, link, pairs, report, dry_run)
        except _Stop:
            break
        if not dry_run:
            watermark = min(upto, frm) if pending else upto
            if since is not None and mark is not None:
                watermark = max(watermark, mark.watermark)
            ReconcileMark.objects.update_or_create(
                project_mapping=project_mapping,
                side=side,
                defaults={
                    "organization": organization,
                    "watermark": watermark,
                    "last_run_at": started,
                },
            )
    if not dry_run:
        ReconcileRun.objects.create(
            organization=organization,
            started_at=started,
            finished_at=timezone.now(),
            searched=report.searched,
            examined=report.examined,
            healed=report.healed,
            created=report.created,
            per_side=report.per_side,
            stopped=report.stopped,
        )
    if report.healed or report.stopped or report.errors:
        logger.info(
            "reconcile.catch_up",
            extra={
                "organization": organization.public_id,
                "searched": report.searched,
                "examined": report.examined,
                "healed": report.healed,
                "issues_created": report.created,
                "stopped": report.stopped,
                "errors": len(report.errors),
                "dry_run": dry_run,
            },
        )
    return report


def _sides(organization: Organization) -> list[tuple[ProjectMapping, str]]:
    """The (project mapping, direction) pairs to look at: our side always (PUSH); the
    partner's (PULL) only two-way and only when we can reach its Jira (Scenario A). With a
    partner install (Scenario B) that install reconciles its own side."""
    if not organization.enabled:
        return []
    ways = [PUSH]
    if organization.is_bidirectional and not organization.is_app:
        if not organization.remote_base_url:
            return []
        ways.append(PULL)
    elif not organization.is_app and not organization.remote_base_url:
        return []
    mappings = list(organization.project_mappings.order_by("pk"))
    return [(m, way) for m in mappings for way in ways]


def _window_minutes(frm: datetime, now: datetime) -> int:
    """The search window in whole minutes, overlap included. Relative JQL dates (`-15m`)
    are counted by the site's own clock and need no time zone (absolute ones are read in
    the searching user's zone)."""
    overlap = settings.SYNC_RECONCILE_OVERLAP_SECONDS
    return max(1, math.ceil(((now - frm).total_seconds() + overlap) / 60))


def _changed(
    client: JiraClient,
    project_mapping: ProjectMapping,
    side: str,
    frm: datetime,
    now: datetime,
    report: CatchUpReport,
) -> list[dict]:
    """The side's issues changed in the window: one search (more pages only when many
    changed), with the mapped fields, the comments, and our tag on issues we created."""
    way = PUSH if side == Side.LOCAL else PULL
    m = project_mapping
    project = m.local_project_key if way == PUSH else m.remote_project_key
    names = sorted({p.source(way) for p in field_pairs(project_mapping.organization, way)})
    window = _window_minutes(frm, now)
    jql = f'project = "{project}" AND updated >= "-{window}m" ORDER BY updated ASC'
    wanted = fields.rest_fields([*names, "comment", "updated", "project"])
    if not project_mapping.organization.is_app:  # attachments and links: Scenario A only
        wanted = sorted({*wanted, "attachment", "issuelinks"})
    found: list[dict] = []
    pages = client.search_pages(jql, fields=wanted, properties=[LINK_PROPERTY], page_size=PAGE_SIZE)
    for page in pages:
        report.count(side, "searched")
        found += page
    return found


def _links(organization: Organization, side: str, ids: list[str]) -> dict[str, IssueLink]:
    """The links of the issues found, with their comment pairs, in a few queries."""
    found: dict[str, IssueLink] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        links = IssueLink.objects.filter(
            organization=organization, **{f"{side}_issue_id__in": chunk}
        ).prefetch_related("comments")
        found.update({str(getattr(link, f"{side}_issue_id")): link for link in links})
    return found


def _one(
    project_mapping: ProjectMapping,
    way: str,
    issue: dict,
    link: IssueLink | None,
    pairs: list,
    report: CatchUpReport,
    dry_run: bool,
) -> int:
    """Examine one issue the search found; sync it when it differs. Returns 1 when it is
    left for the next run (busy, or an error that may pass), else 0."""
    organization = project_mapping.organization
    side = SIDES[way][0]
    issue_id, key = str(issue["id"]), str(issue.get("key") or issue["id"])
    comments_changed = _differs(organization, way, issue, link, pairs)
    if comments_changed is None:
        return 0
    try:
        change = issue_catch_up(
            project_mapping=project_mapping,
            way=way,
            issue_id=issue_id,
            issue_key=key,
            comments_changed=comments_changed,
            dry_run=dry_run,
            note=HEAL_NOTE,
        )
    except LeaseBusy:
        return 1  # a webhook's sync has the pair right now
    except JiraRateLimited as exc:
        report.stopped = _stopped(side, exc)
        raise _Stop from exc
    except JiraError as exc:
        report.errors.append(f"{key}: {exc.jira_message}")
        logger.warning(
            "reconcile.issue_failed",
            extra={"organization": organization.public_id, "issue": key, "error": str(exc)},
        )
        return 1 if exc.retryable else 0
    if change is None or not (change.wrote or (dry_run and (change.fields or change.comments))):
        return 0
    created = change.action == "create"
    report.count(side, "healed")
    if created:
        report.count(side, "created")
    detail = ", ".join(change.fields + [f"comment {c}" for c in change.comments])
    report.changes.append(f"{key}: {change.action} ({detail})")
    return 0


def _differs(
    organization: Organization, way: str, issue: dict, link: IssueLink | None, pairs: list
) -> bool | None:
    """Does the issue as the search shows it differ from its link's agreed state? None: no;
    else whether its comments differ (the fields do when False)."""
    side = SIDES[way][0]
    found = issue.get("fields") or {}
    if link is not None and link.status in CLOSED_LINK_STATUSES:
        return None
    if link is None or link.status != LinkStatus.LINKED:
        tag = (issue.get("properties") or {}).get(LINK_PROPERTY)
        if link is None and isinstance(tag, dict) and tag.get("origin") not in (None, side):
            return None  # our own copy of the other side's issue (its link is being made)
        if way == PULL and link is None and not _creates_here(organization, issue):
            return None
        return True  # unknown so far: the path of a first webhook decides (scope, create)
    comments = _comments_differ(organization, side, found.get("comment"), link)
    if not organization.is_app and (
        attachments_differ(organization=organization, side=side, issue_fields=found, link=link)
        or links_differ(side=side, issue_fields=found, link=link)
    ):
        return comments
    agreed = link.side_state(side)
    for pair in pairs:
        name = pair.source(way)
        if name not in found:
            continue  # not on this project's screens: nothing to compare
        value = fields.read(name, found)
        if name not in agreed or not fields.same(name, value, agreed[name]):
            return comments
    return True if comments else None


def _creates_here(organization: Organization, issue: dict) -> bool:
    """A partner issue no link knows: created here only if its mapping says so."""
    project = ((issue.get("fields") or {}).get("project") or {}).get("key")
    mappings = organization.project_mappings.filter(remote_project_key=project)
    return any(m.create_local_issues for m in mappings) if project else True


def _comments_differ(organization: Organization, side: str, page, link: IssueLink) -> bool:
    """Were comments added, edited or deleted since the last sync? (A page the search cut
    short is taken as changed.) For a partner install (Scenario B), new comments only."""
    if not isinstance(page, dict):
        return False
    shown = [c for c in page.get("comments") or [] if isinstance(c, dict)]
    if int(page.get("total") or 0) > len(shown):
        return True
    pairs: dict[str, CommentLink] = {
        str(getattr(cl, f"{side}_comment_id")): cl
        for cl in link.comments.all()
        if getattr(cl, f"{side}_comment_id")
    }
    seen = set()
    for comment in shown:
        cid = str(comment.get("id"))
        if not organization.copy_restricted_comments and fields.comment_restricted(comment):
            continue
        seen.add(cid)
        pair = pairs.get(cid)
        if pair is None:
            return True
        if organization.is_app:
            continue
        if getattr(pair, f"{side}_hash") != fields.fingerprint("comment", comment.get("body")):
            return True
    if organization.is_app:
        return False
    other = "remote" if side == Side.LOCAL else "local"
    return any(cid not in seen and getattr(cl, f"{other}_comment_id") for cid, cl in pairs.items())


def _stopped(side: str, exc: JiraRateLimited) -> str:
    wait = f"{exc.retry_after:.0f} s" if exc.retry_after is not None else "a while"
    return f"the {side} site is rate limiting (429, Retry-After {wait}): the next run goes on"
