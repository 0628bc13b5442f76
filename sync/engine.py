"""The sync engine: one issue pair brought in step, in one direction.

`PUSH` carries local changes to a partner, `PULL` carries a partner's changes back. Both run
the same steps on a `Job`, under the pair's lease:

1. `precheck` (no Jira call): the fields the event changed, by its changelog; those whose new
   value matches a live echo lock are our own writes coming back. An event that is all echo
   stops here (DESIGN.md section 4, points 2 and 3).
2. Otherwise the source issue is read now, so a stale or reordered event only triggers a
   sync of the current state and never writes an old value (point 4).
3. Each mapped field is compared with the link's agreed state; only real differences are
   written, after their echo locks are committed (point 1). When two-way sync is on and the
   target changed the same field since the agreed state, the organization's conflict policy
   decides and the conflict is recorded (point 5).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jiraapi.client import JiraClient
from jiraapi.errors import (
    JiraNotFound,
    JiraPermanentError,
    JiraRateLimited,
    JiraTransientError,
)
from organizations.models import ConflictPolicy, DeletePolicy, Organization, ProjectMapping

from . import echo, mapping
from .leases import issue_link_get_or_create, issue_link_lease, issue_link_lease_renew
from .mapping import PULL, PUSH, FieldPair
from .models import CommentLink, IssueLink, LinkStatus, Side, SyncEvent, SyncResult

logger = logging.getLogger(__name__)

# The entity property that tags an issue we created with our link (set in the create call).
LINK_PROPERTY = "jira-sync.link"
COMMENT_EVENTS = frozenset({"comment_created", "comment_updated", "comment_deleted"})
COMMENT_EVENT_TYPES = frozenset(
    {"issue_commented", "issue_comment_edited", "issue_comment_deleted"}
)
SIDES = {PUSH: (Side.LOCAL, Side.REMOTE), PULL: (Side.REMOTE, Side.LOCAL)}


class CreateUnsettled(JiraTransientError):
    """A create whose answer was lost cannot be checked yet; retry after `retry_after`."""


@dataclass
class Change:
    """What one sync did (or, in a dry run, would do) to the target issue."""

    action: str = "none"  # create | update | delete | echo | skipped | none
    fields: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def wrote(self) -> bool:
        return self.action in ("create", "delete") or bool(self.fields or self.comments)

    @property
    def result(self) -> str:
        if self.errors:
            return SyncResult.ERROR
        if self.action == "echo":
            return SyncResult.ECHO
        if self.conflicts:
            return SyncResult.CONFLICT
        if self.action == "skipped":
            return SyncResult.SKIPPED
        return SyncResult.WRITTEN if self.wrote else SyncResult.NO_CHANGE


@dataclass
class Job:
    organization: Organization
    project_mapping: ProjectMapping
    way: str  # PUSH or PULL
    source: JiraClient
    target: JiraClient
    issue_id: str  # the source issue
    issue_key: str
    issue: dict | None = None  # the source issue as REST returns it; None once deleted
    comments_changed: bool = False
    dry_run: bool = False
    user_cache: dict = field(default_factory=dict)

    @property
    def source_side(self) -> str:
        return SIDES[self.way][0]

    @property
    def target_side(self) -> str:
        return SIDES[self.way][1]

    @property
    def target_project(self) -> str:
        if self.way == PUSH:
            return self.project_mapping.remote_project_key
        return self.project_mapping.local_project_key

    @property
    def two_way(self) -> bool:
        return self.organization.is_bidirectional


def side_id(link: IssueLink, side: str) -> str | None:
    return getattr(link, f"{side}_issue_id")


def side_key(link: IssueLink, side: str) -> str:
    return getattr(link, f"{side}_issue_key") or side_id(link, side) or ""


# --- values -------------------------------------------------------------------------------


def pairs_for(job: Job) -> list[FieldPair]:
    return mapping.field_pairs(job.organization, job.way)


def target_value(job: Job, pair: FieldPair, value: Any) -> Any:
    if pair.local == "description":
        return mapping.convert_description(value, job.source.flavor, job.target.flavor)
    if pair.local == "issuetype":
        return mapping.convert_issue_type(value, job.project_mapping, pair, job.way)
    if pair.local in ("assignee", "reporter"):
        return mapping.convert_user(value, pair, job.way, job.target, job.user_cache)
    return pair.map_value(value, job.way)


def comment_text_hash(body: Any) -> str:
    """Comments compare by their words, so each site's rendering of markup does not matter."""
    return echo.fingerprint("comment", body)


# --- writing ------------------------------------------------------------------------------


def transition_to(client: JiraClient, key: str, status: str) -> str | None:
    """Move an issue to `status` by the transition that reaches it; an error text if none."""
    transitions = client.get_transitions(key)
    for transition in transitions:
        if str(transition.get("to", {}).get("name", "")).lower() == status.lower():
            client.transition_issue(key, transition["id"])
            return None
    reachable = ", ".join(sorted({t.get("to", {}).get("name", "?") for t in transitions}))
    return f"no transition of {key} reaches status '{status}' (reachable: {reachable or 'none'})"


def edit_with_fallback(client: JiraClient, key: str, fields: dict) -> tuple[list[str], list[str]]:
    """Edit; when Jira refuses some fields (400 naming them), write the others and report."""
    try:
        client.edit_issue(key, fields)
        return list(fields), []
    except JiraPermanentError as exc:
        refused = [name for name in exc.errors if name in fields]
        if not refused or isinstance(exc, JiraNotFound):
            raise
        rest = {k: v for k, v in fields.items() if k not in refused}
        if rest:
            client.edit_issue(key, rest)
        return list(rest), [f"{name}: {exc.errors[name]}" for name in refused]


def comment_copy(comment: dict, source: JiraClient, target: JiraClient) -> Any:
    """The copy of a comment for the other side, headed with its author."""
    author = (comment.get("author") or {}).get("displayName") or "Someone"
    body = mapping.convert_description(comment.get("body"), source.flavor, target.flavor)
    if target.is_cloud:
        content = (body or {}).get("content", []) if isinstance(body, dict) else []
        head = {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": author, "marks": [{"type": "strong"}]},
                {"type": "text", "text": " wrote:"},
            ],
        }
        return {"type": "doc", "version": 1, "content": [head, *content]}
    return f"*{author}* wrote:\n\n{body or ''}"


def plain_comment(text: str, client: JiraClient) -> Any:
    if client.is_cloud:
        paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        return {"type": "doc", "version": 1, "content": [paragraph]}
    return text


def _expect(job: Job, link: IssueLink, values: dict[str, Any]) -> None:
    """Before a write: keep the pair's lease, and commit the echo locks of what we write."""
    if link.lease_owner:
        issue_link_lease_renew(link)
    echo.echo_expect(
        organization=job.organization,
        side=job.target_side,
        issue_id=side_id(link, job.target_side),
        values=values,
        previous=link.side_state(job.target_side),
    )


def _unexpect(job: Job, link: IssueLink, name: str) -> None:
    echo.echo_discard(
        organization=job.organization,
        side=job.target_side,
        issue_id=side_id(link, job.target_side),
        field=name,
    )


def sync_comments(job: Job, link: IssueLink, change: Change) -> None:
    """Reconcile the target issue's comments with the source issue's (idempotent)."""
    src, tgt = job.source_side, job.target_side
    target_key = side_key(link, tgt)
    comments = job.source.get_comments(side_key(link, src))
    links = {getattr(cl, f"{src}_comment_id"): cl for cl in link.comments.all()}
    seen = set()
    for comment in comments:
        cid = str(comment["id"])
        seen.add(cid)
        digest = comment_text_hash(comment.get("body"))
        existing = links.get(cid)
        if existing is not None and getattr(existing, f"{src}_hash") == digest:
            continue
        body = comment_copy(comment, job.source, job.target)
        verb = "edit" if existing else "add"
        change.comments.append(f"{verb} {cid}")
        if job.dry_run:
            continue
        _expect(job, link, {"comment": body})
        if existing is None:
            created = job.target.add_comment(target_key, body)
            CommentLink.objects.create(
                issue_link=link,
                origin=src,
                **{
                    f"{src}_comment_id": cid,
                    f"{tgt}_comment_id": str(created["id"]),
                    f"{src}_hash": digest,
                    f"{tgt}_hash": comment_text_hash(body),
                },
            )
        else:
            job.target.edit_comment(target_key, getattr(existing, f"{tgt}_comment_id"), body)
            setattr(existing, f"{src}_hash", digest)
            setattr(existing, f"{tgt}_hash", comment_text_hash(body))
            existing.save()
    for cid, existing in links.items():
        target_comment = getattr(existing, f"{tgt}_comment_id")
        if cid in seen or not cid or not target_comment:
            continue
        change.comments.append(f"delete {cid}")
        if job.dry_run:
            continue
        with contextlib.suppress(JiraNotFound):
            job.target.delete_comment(target_key, target_comment)
        existing.delete()


# --- create / update / delete ----------------------------------------------------------


def find_created(job: Job, link: IssueLink) -> dict | None:
    """An issue an earlier attempt created (its answer lost), found by our tag."""
    since = link.create_started_at - timedelta(minutes=2)
    jql = (
        f'project = "{job.target_project}" '
        f'AND updated >= "{since.strftime("%Y-%m-%d %H:%M")}" ORDER BY created DESC'
    )
    for candidate in job.target.search(jql, fields=["summary"], page_size=50):
        tag = job.target.get_property(candidate["key"], LINK_PROPERTY)
        if isinstance(tag, dict) and tag.get("linkId") == link.pk:
            return candidate
    return None


def _status_after_create(job: Job, link: IssueLink, wanted: str | None, change: Change) -> str:
    key = side_key(link, job.target_side)
    current = mapping.read_value("status", job.target.get_issue(key, fields=["status"])["fields"])
    if not wanted or not current or wanted.lower() == current.lower():
        return current
    _expect(job, link, {"status": wanted})
    error = transition_to(job.target, key, wanted)
    if error:
        change.errors.append(error)
        _unexpect(job, link, "status")
        return current
    return wanted


def _create(job: Job, link: IssueLink, pairs: list[FieldPair], change: Change) -> None:
    src, tgt = job.source_side, job.target_side
    fields_now = job.issue["fields"]
    values = {p.source(job.way): mapping.read_value(p.source(job.way), fields_now) for p in pairs}
    wanted = {p.target(job.way): target_value(job, p, values[p.source(job.way)]) for p in pairs}
    change.action = "create"
    change.fields = sorted(k for k, v in wanted.items() if v not in (None, "", []))
    if job.dry_run:
        return
    found = None
    if link.status == LinkStatus.CREATING and link.create_started_at:
        # An earlier create got no answer: it may have happened. Jira's search catches up
        # with new issues after a moment, so look only once that moment has passed.
        settle = timedelta(seconds=settings.SYNC_CREATE_SETTLE_SECONDS)
        waited = timezone.now() - link.create_started_at
        if waited < settle:
            raise CreateUnsettled(
                f"create for {job.issue_key} unconfirmed; checking once search settles",
                retry_after=(settle - waited).total_seconds(),
            )
        found = find_created(job, link)
    if found is None:
        link.status = LinkStatus.CREATING
        link.create_started_at = timezone.now()
        setattr(link, f"{src}_issue_key", job.issue_key)
        link.save()
        payload: dict[str, Any] = {"project": {"key": job.target_project}}
        for name, value in wanted.items():
            if name in mapping.NOT_EDITABLE or value in (None, "", []):
                continue
            payload[name] = mapping.write_value(name, value, job.target.flavor)
        payload.setdefault("issuetype", {"name": "Task"})
        tag = {"linkId": link.pk, "origin": src, "id": job.issue_id, "key": job.issue_key}
        try:
            found = job.target.create_issue(payload, properties={LINK_PROPERTY: tag})
        except (JiraPermanentError, JiraRateLimited):
            # Refused for sure (a 4xx, or a 429 before any work): nothing was created.
            link.status = LinkStatus.NEW
            link.save(update_fields=["status", "updated_at"])
            raise
    setattr(link, f"{tgt}_issue_id", str(found["id"]))
    setattr(link, f"{tgt}_issue_key", found["key"])
    link.status = LinkStatus.LINKED
    link.save()
    logger.info(
        "sync.created",
        extra={
            "organization": job.organization.public_id,
            "direction": job.way,
            "source": job.issue_key,
            "target": found["key"],
        },
    )
    job.target.add_remote_link(
        found["key"],
        url=f"{job.source.base_url}/browse/{job.issue_key}",
        title=f"{job.issue_key}: {fields_now.get('summary') or ''}"[:255],
        global_id=f"jira-sync:{src}:{job.issue_id}",
    )
    state_s, state_t = link.side_state(src), link.side_state(tgt)
    for p in pairs:
        s_name, t_name = p.source(job.way), p.target(job.way)
        state_s[s_name] = values[s_name]
        if t_name == "status":
            state_t[t_name] = _status_after_create(job, link, wanted[t_name], change)
        else:
            state_t[t_name] = wanted[t_name]
    link.save(update_fields=["state", "updated_at"])


def _winner(job: Job, target_fields: dict) -> str:
    """Which side's value stands when both changed one field (the conflict policy)."""
    policy = job.organization.conflict_policy
    if policy == ConflictPolicy.LOCAL_WINS:
        return Side.LOCAL
    if policy == ConflictPolicy.REMOTE_WINS:
        return Side.REMOTE
    source_updated = parse_datetime(str(job.issue["fields"].get("updated") or "")) or None
    target_updated = parse_datetime(str(target_fields.get("updated") or "")) or None
    if source_updated and target_updated and source_updated != target_updated:
        return job.source_side if source_updated > target_updated else job.target_side
    return Side.LOCAL  # a tie: ours stands


def _update(job: Job, link: IssueLink, pairs: list[FieldPair], change: Change) -> None:
    src, tgt = job.source_side, job.target_side
    target_key = side_key(link, tgt)
    fields_now = job.issue["fields"]
    state_s, state_t = link.side_state(src), link.side_state(tgt)
    target_fields: dict | None = None
    edits: dict[str, tuple[FieldPair, Any, Any]] = {}
    status_change: tuple[FieldPair, Any, Any] | None = None
    for p in pairs:
        s_name, t_name = p.source(job.way), p.target(job.way)
        value = mapping.read_value(s_name, fields_now)
        if s_name in state_s and mapping.same(s_name, value, state_s[s_name]):
            continue
        wanted = target_value(job, p, value)
        if t_name in state_t and mapping.same(t_name, wanted, state_t[t_name]):
            state_s[s_name] = value  # the target already holds it
            continue
        if job.two_way:
            if target_fields is None:
                target_fields = job.target.get_issue(target_key)["fields"]
            current = mapping.read_value(t_name, target_fields)
            if mapping.same(t_name, current, wanted):
                state_s[s_name], state_t[t_name] = value, current
                continue
            if t_name in state_t and not mapping.same(t_name, current, state_t[t_name]):
                winner = _winner(job, target_fields)
                change.conflicts.append(f"{t_name}: {winner} side's value kept")
                if winner == tgt:
                    continue
        if t_name == "status":
            status_change = (p, value, wanted)
        else:
            edits[t_name] = (p, value, wanted)
    change.action = "update"
    change.fields = sorted([*edits, *(["status"] if status_change else [])])
    if job.dry_run:
        return
    if edits:
        _expect(job, link, {name: wanted for name, (_, _, wanted) in edits.items()})
        payload = {
            name: mapping.write_value(name, wanted, job.target.flavor)
            for name, (_, _, wanted) in edits.items()
        }
        written, refused = edit_with_fallback(job.target, target_key, payload)
        change.errors += refused
        for name, (p, value, wanted) in edits.items():
            if name in written:
                state_s[p.source(job.way)], state_t[name] = value, wanted
            else:
                _unexpect(job, link, name)
    if status_change:
        p, value, wanted = status_change
        error = "no status to move to" if not wanted else None
        if wanted:
            _expect(job, link, {"status": wanted})
            error = transition_to(job.target, target_key, wanted)
        if error:
            change.errors.append(error)
            _unexpect(job, link, "status")
        else:
            state_s[p.source(job.way)], state_t["status"] = value, wanted
    link.save(update_fields=["state", "updated_at"])


def _deleted(job: Job, link: IssueLink, change: Change) -> None:
    """The source issue is gone: delete the target (push) or apply the partner policy (pull)."""
    target_key = side_key(link, job.target_side)
    if link.status == LinkStatus.DELETED or not side_id(link, job.target_side):
        return
    policy = DeletePolicy.DELETE if job.way == PUSH else job.organization.remote_delete_policy
    change.action = "delete"
    change.fields = [f"policy {policy}"]
    if job.dry_run:
        return
    if policy == DeletePolicy.DELETE:
        with contextlib.suppress(JiraNotFound):
            job.target.delete_issue(target_key)
    elif policy == DeletePolicy.TRANSITION:
        status = job.organization.remote_delete_status
        _expect(job, link, {"status": status})
        error = transition_to(job.target, target_key, status)
        if error:
            change.errors.append(error)
            _unexpect(job, link, "status")
    else:
        text = (
            f"The partner issue {job.issue_key} was deleted in {job.organization.name}'s Jira; "
            "this issue is no longer synced."
        )
        body = plain_comment(text, job.target)
        _expect(job, link, {"comment": body})
        job.target.add_comment(target_key, body)
    link.status = LinkStatus.DELETED
    link.save(update_fields=["status", "updated_at"])


def _apply(job: Job, link: IssueLink, change: Change) -> None:
    pairs = pairs_for(job)
    if job.issue is None:
        _deleted(job, link, change)
    elif link.status == LinkStatus.DELETED:
        change.action = "none"
    elif not side_id(link, job.target_side):
        if job.way == PULL and not job.project_mapping.create_local_issues:
            change.action = "skipped"
            change.errors = []
            return
        _create(job, link, pairs, change)
        if not job.dry_run:
            sync_comments(job, link, change)
    else:
        _update(job, link, pairs, change)
        if job.comments_changed:
            sync_comments(job, link, change)


def plan(job: Job) -> Change:
    """What `sync_issue` would do, without writing anything anywhere."""
    job.dry_run = True
    change = Change()
    lookup = {f"{job.source_side}_issue_id": job.issue_id}
    link = IssueLink.objects.filter(organization=job.organization, **lookup).first()
    _apply(job, link or IssueLink(organization=job.organization, **lookup), change)
    return change


def record(
    job: Job, link: IssueLink | None, change: Change, *, delivery=None, started=None
) -> None:
    SyncEvent.objects.create(
        organization=job.organization,
        issue_link=link,
        delivery=delivery,
        direction=job.way,
        action=change.action,
        fields=change.fields + [f"comment {c}" for c in change.comments],
        result=change.result,
        calls=change.calls,
        latency_ms=int((time.time() - started) * 1000) if started else None,
        message="; ".join(change.conflicts + change.errors),
    )


def sync_issue(job: Job, *, delivery=None, started: float | None = None) -> Change:
    """Bring the target issue in step with the source issue `job.issue`."""
    change = Change()
    calls_before = job.target.calls + job.source.calls
    link = issue_link_get_or_create(
        organization=job.organization,
        side=job.source_side,
        issue_id=job.issue_id,
        issue_key=job.issue_key,
    )
    with issue_link_lease(link) as link:
        _apply(job, link, change)
        change.calls = job.target.calls + job.source.calls - calls_before
        link.last_error = "; ".join(change.errors)
        link.save(update_fields=["last_error", "updated_at"])
        record(job, link, change, delivery=delivery, started=started)
        if change.conflicts:
            logger.warning(
                "sync.conflict",
                extra={
                    "organization": job.organization.public_id,
                    "issue": job.issue_key,
                    "conflicts": "; ".join(change.conflicts),
                },
            )
    return change
