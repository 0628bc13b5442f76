"""Worklogs (optional per organization, `sync_worklogs`): time logged on one side appears on
the other as a worklog by the sync account, its comment headed "<author> logged:", both
ways; edits and deletes follow.

Driven by Jira's `worklog_created|updated|deleted` events, which carry the whole worklog and
name the issue by id only. The `jira:issue_updated` event Jira also fires for a worklog
change names only `timespent`/`WorklogId` in its changelog, which no field mapping covers, so
the issue path finds nothing to do for it without a call.

Echoes: before each write to a side we commit an echo lock (field `WORKLOG`) with the digest
of the worklog written (or of the deletion); the webhook our write causes matches it and
costs no call. A genuine event re-reads its worklog from the source (one call), so a late or
reordered event never writes stale time, and a deletion is believed only when the source
answers 404.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from jiraapi.client import JiraClient, counting_calls
from jiraapi.errors import JiraNotFound
from jiraapi.events import JiraEvent
from organizations.models import Organization

from . import echo
from .fields import comment_restricted, convert_rich_text, fingerprint
from .jobs import side_id, side_key
from .leases import issue_link_lease
from .mapping import PULL, PUSH, SIDES
from .models import IssueLink, LinkStatus, SyncEvent, SyncResult, WorklogLink
from .sites import local_client, remote_client, sync_account_ids
from .writes import LOGGED, comment_copy, without_copy_header

logger = logging.getLogger(__name__)

# The echo lock's field for worklog writes (not a Jira field: no field id has parentheses).
WORKLOG = "(worklog)"
OFF = "worklog sync is off for this organization"
RESTRICTED = "the worklog is restricted to a role or group: it is not copied"
ECHO, DONE, NOTHING = "echo", "done", "nothing"


def worklog_digest(worklog: dict | Any) -> str:
    """What identifies a worklog's content on either site: its seconds, its start (as an
    instant) and its comment's words (ADF from REST v3 and wiki text from a webhook agree)."""
    seconds = worklog.get("timeSpentSeconds")
    started = _instant(worklog.get("started"))
    words = fingerprint("comment", worklog.get("comment") or "")
    return fingerprint(WORKLOG, f"{seconds}|{started}|{words}")


def _instant(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return str(int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()))
    except ValueError:
        return value


def _kept_home(organization: Organization, worklog: dict) -> bool:
    """A worklog restricted to a role or group stays on its site, as comments do, unless the
    organization copies restricted comments."""
    return not organization.copy_restricted_comments and comment_restricted(worklog)


def _deletion(worklog_id: str) -> str:
    return f"deleted {worklog_id}"


@dataclass
class _Outcome:
    status: str  # ECHO | DONE | NOTHING
    reason: str = ""
    calls: int = 0
    fields: list[str] = field(default_factory=list)


def worklog_event_process(
    *,
    event: JiraEvent,
    way: str,
    organization: Organization | None,
    delivery_id: int | None = None,
    started: float | None = None,
) -> tuple[str, str]:
    """A worklog event, for every organization (with worklogs on) linking its issue.

    Returns ("echo" | "done" | "ignored", reason). With `sync_worklogs` off for a partner's
    event: no query, no call. For our own Jira's events one query finds the links of the
    organizations that want worklogs."""
    if way == PULL and (organization is None or not organization.sync_worklogs):
        return "ignored", OFF
    ref = event.worklog
    if ref is None or not ref.id or not event.issue_id:
        return "ignored", "the worklog event names no worklog or no issue"
    source_side = SIDES[way][0]
    links = IssueLink.objects.select_related("organization").filter(
        organization__enabled=True,
        organization__sync_worklogs=True,
        status=LinkStatus.LINKED,
        **{f"{source_side}_issue_id": event.issue_id},
    )
    if way == PULL:
        links = links.filter(organization=organization)
    links = [link for link in links if not link.organization.is_app]
    if not links:
        return "ignored", (
            "no organization that syncs worklogs links this issue"
            if way == PUSH
            else "the issue is not linked (worklogs follow linked issues only)"
        )
    outcomes = [
        _sync_one(link, event=event, way=way, delivery_id=delivery_id, started=started)
        for link in links
    ]
    if all(o.status == ECHO for o in outcomes):
        return "echo", ""
    if all(o.status != DONE for o in outcomes):
        return "ignored", "; ".join(o.reason for o in outcomes if o.reason)
    return "done", ""


def _clients(link: IssueLink, way: str) -> tuple[JiraClient, JiraClient]:
    remote = remote_client(link.organization)
    return (local_client(), remote) if way == PUSH else (remote, local_client())


def _sync_one(
    link: IssueLink, *, event: JiraEvent, way: str, delivery_id: int | None, started: float | None
) -> _Outcome:
    src, tgt = SIDES[way]
    ref = event.worklog
    source, target = _clients(link, way)
    known = WorklogLink.objects.filter(issue_link=link, **{f"{src}_worklog_id": ref.id}).first()
    outcome = _precheck(link, event=event, src=src, known=known, source=source)
    if outcome is None:
        with issue_link_lease(link) as leased:
            outcome = _apply(leased, ref.id, way=way, source=source, target=target)
    _record(link, way, outcome, delivery_id=delivery_id, started=started)
    logger.info(
        "sync.worklog",
        extra={
            "organization": link.organization.public_id,
            "issue": event.issue_id,
            "worklog": ref.id,
            "status": outcome.status,
            "reason": outcome.reason,
        },
    )
    return outcome


def _precheck(
    link: IssueLink,
    *,
    event: JiraEvent,
    src: str,
    known: WorklogLink | None,
    source: JiraClient,
) -> _Outcome | None:
    """Why nothing needs doing (our own write coming back, already in step), without a
    Jira call; None: a genuine change. A change made by anyone but the sync account is
    genuine whatever the locks say (DESIGN.md section 4, point 7)."""
    ref = event.worklog
    raw = dict(ref.raw)
    digest = _deletion(ref.id) if ref.action == "deleted" else worklog_digest(raw)
    # A deletion names no actor (the worklog's authors are not who deleted it): its lock
    # alone decides.
    if (ref.action == "deleted" or not _by_someone_else(event, source)) and echo.echo_consume(
        organization=link.organization,
        side=src,
        issue_id=event.issue_id,
        values={WORKLOG: digest},
    ):
        return _Outcome(ECHO, "echo: our own worklog write coming back")
    if ref.action == "deleted" and known is None:
        return _Outcome(NOTHING, "the deleted worklog was not synced (or is already gone)")
    if known is None and _kept_home(link.organization, raw):
        return _Outcome(NOTHING, RESTRICTED)
    if known is not None and getattr(known, f"{src}_hash") == digest:
        return _Outcome(NOTHING, "the worklog is already in step")
    return None


def _by_someone_else(event: JiraEvent, source: JiraClient) -> bool:
    """Was the change made by someone other than the site's sync account (as far as known)?"""
    actor = event.actor
    if actor is None:
        return False
    ids = sync_account_ids(source)
    return bool(ids) and not ({actor.account_id, actor.name, actor.key} & ids)


def _apply(link: IssueLink, worklog_id: str, *, way: str, source, target) -> _Outcome:
    """Bring the other side in step with the source's worklog as it is now."""
    src = SIDES[way][0]
    known = WorklogLink.objects.filter(issue_link=link, **{f"{src}_worklog_id": worklog_id}).first()
    with counting_calls() as calls:
        try:
            current = source.get_worklog(side_key(link, src), worklog_id)
        except JiraNotFound:
            current = None
        if current is None:
            outcome = _delete_other(link, known, way=way, target=target)
        else:
            outcome = _write_other(link, known, current, way=way, source=source, target=target)
    outcome.calls = calls.count
    return outcome


def _expect(link: IssueLink, side: str, target: JiraClient, value: str) -> None:
    sync_account_ids(target)  # learnt before our write, so its echo costs no call
    echo.echo_expect(
        organization=link.organization,
        side=side,
        issue_id=side_id(link, side),
        values={WORKLOG: value},
    )


def _delete_other(link: IssueLink, known: WorklogLink | None, *, way: str, target) -> _Outcome:
    src, tgt = SIDES[way]
    if known is None:
        return _Outcome(NOTHING, "the worklog is gone and was never synced")
    other = getattr(known, f"{tgt}_worklog_id")
    if other:
        _expect(link, tgt, target, _deletion(other))
        try:
            target.delete_worklog(side_key(link, tgt), other)
        except JiraNotFound:
            echo.echo_discard(
                organization=link.organization,
                side=tgt,
                issue_id=side_id(link, tgt),
                field=WORKLOG,
                value=_deletion(other),
            )
    known.delete()
    return _Outcome(DONE, fields=[f"worklog {getattr(known, f'{src}_worklog_id')} deleted"])


def _body(current: dict, *, to_original: bool, source, target) -> dict:
    """The worklog to write: a copy headed with its author, or (a copy edited) the copy's
    time and words for its original, without our header."""
    body: dict[str, Any] = {
        "timeSpentSeconds": current.get("timeSpentSeconds"),
        "started": current.get("started"),
    }
    if to_original:
        text = convert_rich_text(
            without_copy_header(current.get("comment"), LOGGED), source.flavor, target.flavor
        )
    else:
        text = comment_copy(current, source.flavor, target.flavor, verb=LOGGED, key="comment")
    if text not in (None, ""):
        body["comment"] = text
    return body


def _write_other(
    link: IssueLink, known: WorklogLink | None, current: dict, *, way: str, source, target
) -> _Outcome:
    src, tgt = SIDES[way]
    source_id = str(current.get("id"))
    digest = worklog_digest(current)
    if known is not None and getattr(known, f"{src}_hash") == digest:
        return _Outcome(NOTHING, "the worklog is already in step")
    if known is None and _kept_home(link.organization, current):
        return _Outcome(NOTHING, RESTRICTED)
    to_original = known is not None and known.origin == tgt
    body = _body(current, to_original=to_original, source=source, target=target)
    written = worklog_digest(body)
    _expect(link, tgt, target, written)
    tgt_key = side_key(link, tgt)
    other = getattr(known, f"{tgt}_worklog_id") if known is not None else None
    if other:
        try:
            target.edit_worklog(tgt_key, other, body)
        except JiraNotFound:
            if to_original:  # the original is gone: the pair ends here
                known.delete()
                return _Outcome(NOTHING, "the original worklog is gone at its site")
            other = None
    if not other:
        other = str(target.add_worklog(tgt_key, body)["id"])
    hashes = {f"{src}_hash": digest, f"{tgt}_hash": written}
    ids = {f"{src}_worklog_id": source_id, f"{tgt}_worklog_id": other}
    if known is None:
        try:
            with transaction.atomic():
                WorklogLink.objects.create(issue_link=link, origin=src, **ids, **hashes)
        except IntegrityError:  # another delivery paired it meanwhile
            WorklogLink.objects.filter(issue_link=link, **{f"{src}_worklog_id": source_id}).update(
                **hashes
            )
    else:
        for name, value in {**ids, **hashes}.items():
            setattr(known, name, value)
        known.save()
    action = "updated" if known is not None else "copied"
    return _Outcome(DONE, fields=[f"worklog {source_id} {action}"])


def _record(
    link: IssueLink, way: str, outcome: _Outcome, *, delivery_id: int | None, started
) -> None:
    from .engine import latency_ms

    result = {
        ECHO: SyncResult.ECHO,
        DONE: SyncResult.WRITTEN,
        NOTHING: SyncResult.NO_CHANGE,
    }[outcome.status]
    try:
        with transaction.atomic():
            SyncEvent.objects.create(
                organization=link.organization,
                issue_link=link,
                delivery_id=delivery_id,
                direction=way,
                action="worklog" if outcome.status != ECHO else "echo",
                fields=outcome.fields,
                result=result,
                calls=outcome.calls,
                latency_ms=latency_ms(started),
                message=outcome.reason,
            )
    except Exception:
        logger.exception(
            "sync.record_failed",
            extra={"organization": link.organization.public_id, "issue": link.local_issue_key},
        )
