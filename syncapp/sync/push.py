"""Push: a local issue's changes written to each partner's Jira (local -> partner).

For every organization whose project mapping covers the issue, under the pair's lease:
re-read nothing stale (the local issue is read once per delivery, now), compare each
mapped field with the link's agreed state, and write only real differences, after
committing their echo locks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from organizations.models import Organization, ProjectMapping
from syncapp.jira.client import JiraClient
from syncapp.jira.errors import (
    JiraNotFound,
    JiraPermanentError,
    JiraRateLimited,
    JiraTransientError,
)

from . import echo, mapping
from .leases import issue_link_get_or_create, issue_link_lease
from .mapping import PUSH, FieldPair
from .models import CommentLink, IssueLink, LinkStatus, Side, SyncEvent, SyncResult

logger = logging.getLogger(__name__)

# The entity property that tags a partner issue with our link (set in the create call).
LINK_PROPERTY = "jira-sync.link"
COMMENT_EVENTS = frozenset({"comment_created", "comment_updated", "comment_deleted"})
COMMENT_EVENT_TYPES = frozenset(
    {"issue_commented", "issue_comment_edited", "issue_comment_deleted"}
)


class CreateUnsettled(JiraTransientError):
    """A create whose answer was lost cannot be checked yet; retry after `retry_after`."""


@dataclass
class Change:
    """What one push did (or, in a dry run, would do) to one partner issue."""

    action: str = "none"  # create | update | delete | none
    fields: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    calls: int = 0

    @property
    def wrote(self) -> bool:
        return self.action in ("create", "delete") or bool(self.fields or self.comments)


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# --- reading the local issue --------------------------------------------------------------


def push_fields(organization: Organization) -> list[FieldPair]:
    return mapping.field_pairs(organization, PUSH)


def local_values(pairs: list[FieldPair], fields: dict) -> dict[str, Any]:
    return {p.local: mapping.read_value(p.local, fields) for p in pairs}


def target_value(
    pair: FieldPair,
    value: Any,
    *,
    project_mapping: ProjectMapping,
    source: JiraClient,
    target: JiraClient,
    user_cache: dict,
) -> Any:
    if pair.local == "description":
        return mapping.convert_description(value, source.flavor, target.flavor)
    if pair.local == "issuetype":
        return mapping.convert_issue_type(value, project_mapping, pair, PUSH)
    if pair.local in ("assignee", "reporter"):
        return mapping.convert_user(value, pair, PUSH, target, user_cache)
    return pair.map_value(value, PUSH)


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


def comment_body(comment: dict, source: JiraClient, target: JiraClient) -> Any:
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


def sync_comments(
    *,
    link: IssueLink,
    source: JiraClient,
    target: JiraClient,
    change: Change,
    dry_run: bool = False,
) -> None:
    """Reconcile the partner issue's comments with the local issue's (idempotent)."""
    organization = link.organization
    local_comments = source.get_comments(link.local_issue_key or link.local_issue_id)
    links = {cl.local_comment_id: cl for cl in link.comments.all()}
    seen = set()
    for comment in local_comments:
        cid = str(comment["id"])
        seen.add(cid)
        digest = body_hash(comment.get("body"))
        existing = links.get(cid)
        if existing is not None and existing.local_hash == digest:
            continue
        body = comment_body(comment, source, target)
        if dry_run:
            change.comments.append(f"{'edit' if existing else 'add'} {cid}")
            continue
        echo.echo_expect(
            organization=organization,
            side=Side.REMOTE,
            issue_id=link.remote_issue_id,
            values={"comment": body},
        )
        if existing is None:
            created = target.add_comment(link.remote_issue_key, body)
            CommentLink.objects.create(
                issue_link=link,
                local_comment_id=cid,
                remote_comment_id=str(created["id"]),
                origin=Side.LOCAL,
                local_hash=digest,
                remote_hash=body_hash(created.get("body", body)),
            )
            change.comments.append(f"add {cid}")
        else:
            updated = target.edit_comment(link.remote_issue_key, existing.remote_comment_id, body)
            existing.local_hash = digest
            existing.remote_hash = body_hash((updated or {}).get("body", body))
            existing.save(update_fields=["local_hash", "remote_hash", "updated_at"])
            change.comments.append(f"edit {cid}")
    for cid, existing in links.items():
        if cid in seen or not existing.remote_comment_id:
            continue
        if dry_run:
            change.comments.append(f"delete {cid}")
            continue
        with contextlib.suppress(JiraNotFound):
            target.delete_comment(link.remote_issue_key, existing.remote_comment_id)
        existing.delete()
        change.comments.append(f"delete {cid}")


# --- the push of one issue to one organization ------------------------------------------


@dataclass
class PushContext:
    organization: Organization
    project_mapping: ProjectMapping
    source: JiraClient
    target: JiraClient
    issue: dict | None  # the local issue as REST returns it; None when it is gone
    issue_id: str
    issue_key: str
    comments_changed: bool = False
    dry_run: bool = False
    user_cache: dict = field(default_factory=dict)


def find_created_remote(ctx: PushContext, link: IssueLink) -> dict | None:
    """A partner issue an earlier attempt created (its response lost): found by our tag."""
    since = link.create_started_at - timedelta(minutes=2)
    jql = (
        f'project = "{ctx.project_mapping.remote_project_key}" '
        f'AND updated >= "{since.strftime("%Y-%m-%d %H:%M")}" ORDER BY created DESC'
    )
    for candidate in ctx.target.search(jql, fields=["summary"], page_size=50):
        tag = ctx.target.get_property(candidate["key"], LINK_PROPERTY)
        if isinstance(tag, dict) and tag.get("linkId") == link.pk:
            return candidate
    return None


def _create(ctx: PushContext, link: IssueLink, pairs: list[FieldPair], change: Change) -> None:
    values = local_values(pairs, ctx.issue["fields"])
    targets = {
        p.remote: target_value(
            p,
            values[p.local],
            project_mapping=ctx.project_mapping,
            source=ctx.source,
            target=ctx.target,
            user_cache=ctx.user_cache,
        )
        for p in pairs
    }
    change.action = "create"
    change.fields = sorted(k for k, v in targets.items() if v not in (None, "", []))
    if ctx.dry_run:
        return
    found = None
    if link.status == LinkStatus.CREATING and link.create_started_at:
        # An earlier create got no answer: it may have happened. Jira's search catches up
        # with new issues after a moment, so look only once that moment has passed.
        settle = timedelta(seconds=settings.SYNC_CREATE_SETTLE_SECONDS)
        waited = timezone.now() - link.create_started_at
        if waited < settle:
            raise CreateUnsettled(
                f"create of {ctx.issue_key} unconfirmed; checking after the search settles",
                retry_after=(settle - waited).total_seconds(),
            )
        found = find_created_remote(ctx, link)
    if found is None:
        link.status = LinkStatus.CREATING
        link.create_started_at = timezone.now()
        link.local_issue_key = ctx.issue_key
        link.save(update_fields=["status", "create_started_at", "local_issue_key", "updated_at"])
        fields = {"project": {"key": ctx.project_mapping.remote_project_key}}
        for name, value in targets.items():
            if name in mapping.NOT_EDITABLE or value in (None, "", []):
                continue
            fields[name] = mapping.write_value(name, value, ctx.target.flavor)
        fields.setdefault("issuetype", {"name": "Task"})
        tag = {"linkId": link.pk, "localId": ctx.issue_id, "localKey": ctx.issue_key}
        try:
            found = ctx.target.create_issue(fields, properties={LINK_PROPERTY: tag})
        except (JiraPermanentError, JiraRateLimited):
            # Refused for sure (a 4xx, or a 429 before any work): nothing was created.
            link.status = LinkStatus.NEW
            link.save(update_fields=["status", "updated_at"])
            raise
    link.remote_issue_id = str(found["id"])
    link.remote_issue_key = found["key"]
    link.status = LinkStatus.LINKED
    link.save(update_fields=["remote_issue_id", "remote_issue_key", "status", "updated_at"])
    logger.info(
        "push.created",
        extra={
            "organization": ctx.organization.public_id,
            "local": ctx.issue_key,
            "remote": found["key"],
        },
    )
    ctx.target.add_remote_link(
        link.remote_issue_key,
        url=f"{ctx.source.base_url}/browse/{ctx.issue_key}",
        title=f"{ctx.issue_key}: {values.get('summary', '')}"[:255],
        global_id=f"jira-sync:local:{ctx.issue_id}",
    )
    state_local, state_remote = link.side_state(Side.LOCAL), link.side_state(Side.REMOTE)
    status_pair = next((p for p in pairs if p.local == "status"), None)
    for p in pairs:
        if p is status_pair:
            continue
        state_local[p.local] = values[p.local]
        state_remote[p.remote] = targets[p.remote]
    if status_pair is not None:
        wanted = targets[status_pair.remote]
        current = mapping.read_value(
            "status", ctx.target.get_issue(link.remote_issue_key, fields=["status"])["fields"]
        )
        error = None
        if wanted and current and wanted.lower() != current.lower():
            echo.echo_expect(
                organization=ctx.organization,
                side=Side.REMOTE,
                issue_id=link.remote_issue_id,
                values={"status": wanted},
            )
            error = transition_to(ctx.target, link.remote_issue_key, wanted)
        if error:
            change.errors.append(error)
            echo.echo_discard(
                organization=ctx.organization,
                side=Side.REMOTE,
                issue_id=link.remote_issue_id,
                field="status",
            )
            state_remote["status"] = current
        else:
            state_remote["status"] = wanted
        state_local["status"] = values["status"]
    link.save(update_fields=["state", "updated_at"])


def _update(ctx: PushContext, link: IssueLink, pairs: list[FieldPair], change: Change) -> None:
    values = local_values(pairs, ctx.issue["fields"])
    state_local, state_remote = link.side_state(Side.LOCAL), link.side_state(Side.REMOTE)
    edits: dict[str, Any] = {}
    status_wanted = None
    for p in pairs:
        if p.local in state_local and mapping.same(p.local, values[p.local], state_local[p.local]):
            continue
        wanted = target_value(
            p,
            values[p.local],
            project_mapping=ctx.project_mapping,
            source=ctx.source,
            target=ctx.target,
            user_cache=ctx.user_cache,
        )
        if p.remote in state_remote and mapping.same(p.remote, wanted, state_remote[p.remote]):
            state_local[p.local] = values[p.local]
            continue
        if p.remote == "status":
            status_wanted = (p, wanted)
        else:
            edits[p.remote] = (p, wanted)
    change.action = "update"
    change.fields = sorted([*edits, *(["status"] if status_wanted else [])])
    if ctx.dry_run or not (edits or status_wanted):
        if not ctx.dry_run:
            link.save(update_fields=["state", "updated_at"])
        return
    if edits:
        echo.echo_expect(
            organization=ctx.organization,
            side=Side.REMOTE,
            issue_id=link.remote_issue_id,
            values={name: wanted for name, (_, wanted) in edits.items()},
        )
        payload = {
            name: mapping.write_value(name, wanted, ctx.target.flavor)
            for name, (_, wanted) in edits.items()
        }
        written, refused = edit_with_fallback(ctx.target, link.remote_issue_key, payload)
        change.errors += refused
        for name, (p, wanted) in edits.items():
            if name in written:
                state_local[p.local] = values[p.local]
                state_remote[name] = wanted
            else:
                echo.echo_discard(
                    organization=ctx.organization,
                    side=Side.REMOTE,
                    issue_id=link.remote_issue_id,
                    field=name,
                )
    if status_wanted:
        p, wanted = status_wanted
        error = None
        if wanted:
            echo.echo_expect(
                organization=ctx.organization,
                side=Side.REMOTE,
                issue_id=link.remote_issue_id,
                values={"status": wanted},
            )
            error = transition_to(ctx.target, link.remote_issue_key, wanted)
        if error:
            change.errors.append(error)
            echo.echo_discard(
                organization=ctx.organization,
                side=Side.REMOTE,
                issue_id=link.remote_issue_id,
                field="status",
            )
        else:
            state_local[p.local] = values[p.local]
            state_remote[p.remote] = wanted
    link.save(update_fields=["state", "updated_at"])


def _delete(ctx: PushContext, link: IssueLink, change: Change) -> None:
    if link.status == LinkStatus.DELETED or not link.remote_issue_key:
        return
    change.action = "delete"
    if ctx.dry_run:
        return
    with contextlib.suppress(JiraNotFound):
        ctx.target.delete_issue(link.remote_issue_key)
    link.status = LinkStatus.DELETED
    link.save(update_fields=["status", "updated_at"])


def _apply(ctx: PushContext, link: IssueLink, change: Change) -> None:
    pairs = push_fields(ctx.organization)
    if ctx.issue is None:
        _delete(ctx, link, change)
    elif link.status == LinkStatus.DELETED:
        change.action = "none"
    elif not link.remote_issue_id:
        _create(ctx, link, pairs, change)
        if not ctx.dry_run:
            sync_comments(link=link, source=ctx.source, target=ctx.target, change=change)
    else:
        _update(ctx, link, pairs, change)
        if ctx.comments_changed:
            sync_comments(
                link=link, source=ctx.source, target=ctx.target, change=change, dry_run=ctx.dry_run
            )


def push_plan(ctx: PushContext) -> Change:
    """What `push_issue` would do, without writing anything anywhere."""
    ctx.dry_run = True
    change = Change()
    link = IssueLink.objects.filter(
        organization=ctx.organization, local_issue_id=ctx.issue_id
    ).first() or IssueLink(organization=ctx.organization, local_issue_id=ctx.issue_id)
    _apply(ctx, link, change)
    return change


def push_issue(ctx: PushContext, *, delivery=None, started: float | None = None) -> Change:
    """Bring one partner issue in step with the local issue `ctx.issue`."""
    change = Change()
    calls_before = ctx.target.calls
    link = issue_link_get_or_create(
        organization=ctx.organization,
        side=Side.LOCAL,
        issue_id=ctx.issue_id,
        issue_key=ctx.issue_key,
    )
    with issue_link_lease(link) as link:
        _apply(ctx, link, change)
        change.calls = ctx.target.calls - calls_before
        link.last_error = "; ".join(change.errors)
        link.save(update_fields=["last_error", "updated_at"])
        SyncEvent.objects.create(
            organization=ctx.organization,
            issue_link=link,
            delivery=delivery,
            direction="push",
            action=change.action,
            fields=change.fields + [f"comment {c}" for c in change.comments],
            result=(
                SyncResult.ERROR
                if change.errors
                else SyncResult.WRITTEN
                if change.wrote
                else SyncResult.NO_CHANGE
            ),
            calls=change.calls,
            latency_ms=int((time.time() - started) * 1000) if started else None,
            message="; ".join(change.errors),
        )
    return change
