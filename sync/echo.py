"""Echo locks (DESIGN.md section 4): recognising our own writes when their webhooks come back.

Before a write, `echo_expect` commits one lock per written field with the fingerprint of
the value written. When an event arrives, `echo_consume` tells for each changed field
whether it is such an echo, consuming the lock (once per write). `echo_precheck` classifies
a whole event this way before any Jira call: all echo (or nothing mapped changed) costs none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from jiraapi.client import JiraClient
from jiraapi.events import JiraEvent
from organizations.models import Organization, TargetGonePolicy

from .fields import comment_restricted, fingerprint, kind_of, read
from .models import (
    CLOSED_LINK_STATUSES,
    LINK_PROPERTY,
    MOVED_OUT,
    AttachmentStatus,
    CommentLink,
    EchoLock,
    IssueLink,
    LinkStatus,
)
from .sites import sync_account_ids

logger = logging.getLogger(__name__)


def echo_ttl() -> timedelta:
    return timedelta(seconds=settings.ECHO_LOCK_TTL_SECONDS)


def echo_expect(
    *,
    organization: Organization,
    side: str,
    issue_id: str,
    values: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> None:
    """Commit a lock per field about to be written to `side` (before the write).

    `previous` holds the values the fields had on that side before the write, as far as
    we know them (the link's agreed state).

    One statement for all the fields (an upsert, atomic on its own): a new lock, or one more
    pending write of a live one (a lock run out starts again at one)."""
    if not values:
        return
    previous = previous or {}
    ops = connection.ops
    now = timezone.now()
    created, expires = (
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(now + echo_ttl()),
    )
    rows, params = [], []
    for name, value in values.items():
        before = fingerprint(name, previous[name]) if name in previous else ""
        rows.append("(%s, %s, %s, %s, %s, %s, 1, %s, %s)")
        params += [organization.pk, side, str(issue_id), name, fingerprint(name, value)]
        params += [before, created, expires]
    table = EchoLock._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, side, issue_id, field, fingerprint, "  # noqa: S608
            f"previous, pending, created_at, expires_at) VALUES {', '.join(rows)} "
            "ON CONFLICT (organization_id, side, issue_id, field, fingerprint) DO UPDATE SET "
            f"pending = CASE WHEN {table}.expires_at > %s THEN {table}.pending + 1 ELSE 1 END, "
            "expires_at = excluded.expires_at, previous = excluded.previous",
            [*params, created],
        )


def is_echo(
    lock: EchoLock, name: str, value: Any, *, agreed: Any = None, changed_from: Any = None
) -> bool:
    """Is a change to `value` (matching `lock`) our own write coming back?

    Certain when the side now agrees with us (`agreed`). Otherwise it is either a late echo
    of an older write of ours (its changelog starts from the value the lock recorded as
    `previous`) or a person setting that value again (it starts from something else).
    """
    if fingerprint(name, value) == fingerprint(name, agreed):
        return True
    return bool(lock.previous) and fingerprint(name, changed_from) == lock.previous


def echo_consume(
    *,
    organization: Organization,
    side: str,
    issue_id: str,
    values: dict[str, Any],
    agreed: dict[str, Any] | None = None,
    changed_from: dict[str, Any] | None = None,
) -> set[str]:
    """The fields among `values` (name -> new value) that are echoes; each lock used once.

    Without `agreed` (comments), a matching live lock is enough. A lock is taken by one
    conditional statement (`is_echo`'s test in SQL): deleted when it awaits one write (the
    usual case), else one of its pending writes taken by an `UPDATE ... RETURNING`, so
    concurrent consumers of one lock take one pending write each; the lock goes once none
    is left."""
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    table = EchoLock._meta.db_table
    echoes: set[str] = set()
    for name, value in values.items():
        where = (
            "organization_id = %s AND side = %s AND issue_id = %s AND field = %s "
            "AND fingerprint = %s AND expires_at > %s AND pending > 0"
        )
        params = [organization.pk, side, str(issue_id), name, fingerprint(name, value), now]
        if agreed is not None and fingerprint(name, value) != fingerprint(name, agreed.get(name)):
            # Not agreed: only a late echo of an older write (its changelog starts from the
            # value the lock recorded as `previous`), see `is_echo`.
            where += " AND previous <> '' AND previous = %s"
            params.append(fingerprint(name, (changed_from or {}).get(name)))
        with connection.cursor() as cursor:
            # The usual lock awaits one write: taken by deleting it, in one statement.
            cursor.execute(
                f"DELETE FROM {table} WHERE id = ("  # noqa: S608
                f"SELECT id FROM {table} WHERE {where} LIMIT 1) AND pending = 1 RETURNING id",
                params,
            )
            if cursor.fetchone() is None:
                # None such (or it awaits more than one write): one of its writes taken.
                cursor.execute(
                    f"UPDATE {table} SET pending = pending - 1 WHERE id = ("  # noqa: S608
                    f"SELECT id FROM {table} WHERE {where} LIMIT 1) AND pending > 0 "
                    "RETURNING id, pending",
                    params,
                )
                taken = cursor.fetchone()
                if taken is None:
                    continue
                if taken[1] == 0:
                    cursor.execute(f"DELETE FROM {table} WHERE id = %s AND pending = 0", [taken[0]])  # noqa: S608
        echoes.add(name)
    return echoes


# The echo locks of our attachment uploads: by file name (the changelog item's `toString`).
ATTACHMENT = "attachment"

# The lock of an issue deletion we are about to make (not a Jira field: no field id has
# parentheses). Any organization's sync can find it: a deletion we made for one partner must
# not be taken, when our Jira reports it, for a local deletion to pass on to the others.
DELETION = "(issue deleted)"


def echo_expect_deletion(*, organization: Organization, side: str, issue_id: str) -> None:
    """Before deleting an issue on `side` for `organization`: commit that it is our doing."""
    EchoLock.objects.update_or_create(
        organization=organization,
        side=side,
        issue_id=str(issue_id),
        field=DELETION,
        fingerprint="",
        defaults={"expires_at": timezone.now() + echo_ttl(), "pending": 1},
    )


def echo_deletion_by(*, side: str, issue_id: str) -> Organization | None:
    """The organization for which we deleted this issue (recently), if we did."""
    lock = (
        EchoLock.objects.select_related("organization")
        .filter(side=side, issue_id=str(issue_id), field=DELETION, expires_at__gt=timezone.now())
        .first()
    )
    return lock.organization if lock is not None else None


_ANY = object()


def echo_discard(
    *, organization: Organization, side: str, issue_id: str, field: str, value: Any = _ANY
) -> None:
    """Forget the locks of a field whose write failed (no echo will come); with `value`,
    only the lock of that value (the other values written stay expected)."""
    locks = EchoLock.objects.filter(
        organization=organization, side=side, issue_id=str(issue_id), field=field
    )
    if value is not _ANY:
        locks = locks.filter(fingerprint=fingerprint(field, value))
    locks.delete()


def echo_purge_expired() -> int:
    deleted, _ = EchoLock.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


# --- the pre-check: our own echoes cost no Jira call ---------------------------------------


def changed_values(
    event: JiraEvent, source_names: set[str]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """The mapped fields the event's changelog names: their new values, their old values.

    The bool is False when the changelog names a field we cannot identify (a custom field
    without `fieldId` in an older payload): such an event is never taken for an echo.
    """
    items: dict[str, list] = {}
    for change in event.changes:
        if change.identified and change.field in source_names:
            items.setdefault(change.field, []).append(change)
    changed = {name: read(name, event.issue_fields) for name in items}
    before = {name: kind_of(name).before_all(items[name], changed[name]) for name in items}
    return changed, before, event.all_changes_identified


def status_by_resolution(
    event: JiraEvent, source_names: set[str], changed: dict[str, Any], agreed: dict[str, Any]
) -> dict[str, Any]:
    """A resolution change is a status change to re-read.

    A resolve (or reopen) may come as an event whose changelog names only `resolution`
    (a post function or an automation rule sets it after the move, and the status event may
    be lost or filtered out): when the status mapped from this side is not named and the
    issue's status differs from the agreed one, the status counts as changed. Our own move
    coming back already agrees, so it costs nothing.
    """
    if "status" not in source_names or "status" in changed:
        return {}
    if not any(change.field == "resolution" for change in event.changes):
        return {}
    status = read("status", event.issue_fields)
    if status is None or ("status" in agreed and kind_of("status").same(status, agreed["status"])):
        return {}
    return {"status": status}


def _comment_state(
    *,
    organization: Organization,
    side: str,
    link: IssueLink,
    event: JiraEvent,
    locks: Callable[[], bool] = lambda: True,
) -> str | None:
    """ "genuine", "echo", "in step" or "restricted" for the event's comment; None without one.

    `locks()`: False when the comment was written by someone other than the sync account,
    which no echo lock can speak for (asked only when a lock is to be consulted)."""
    comment = event.comment
    if comment is None:
        return None
    known = CommentLink.objects.filter(
        issue_link=link, **{f"{side}_comment_id": comment.id}
    ).first()
    if comment.action == "deleted":
        return "genuine" if known is not None else "echo"
    if (
        known is None
        and not organization.copy_restricted_comments
        and comment_restricted(dict(comment.raw))
    ):
        return "restricted"  # never copied (a copy made while it was public goes by the plan)
    values = {"comment": comment.body}
    if locks() and echo_consume(
        organization=organization, side=side, issue_id=event.issue_id, values=values
    ):
        return "echo"
    if known is not None and getattr(known, f"{side}_hash") == fingerprint("comment", comment.body):
        return "in step"  # e.g. the second event Jira sends for one comment
    return "genuine"


def _attachment_state(
    *,
    organization: Organization,
    side: str,
    link: IssueLink,
    event: JiraEvent,
    locks: Callable[[], bool],
) -> str | None:
    """ "genuine" or "echo" for the attachment items of an event's changelog; None without.

    An added id the table pairs, or whose name has a live echo lock of ours, is our upload
    coming back; a removed id the table no longer knows (or is deleting) is our delete.
    `locks()`: False when the change was made by someone other than the sync account.
    """
    items = [c for c in event.changes if c.field == ATTACHMENT]
    if not items or not organization.copy_attachments:
        return None
    column = f"{side}_attachment_id"
    ids = {str(c.to_value or c.from_value) for c in items}
    known = {getattr(r, column): r for r in link.attachments.filter(**{f"{column}__in": ids})}
    genuine = False
    for item in items:
        if item.to_value:  # added
            row = known.get(str(item.to_value))
            ours = row is not None and row.origin != side  # our copy, already paired
            if (
                (row is None or ours)
                and locks()
                and echo_consume(
                    organization=organization,
                    side=side,
                    issue_id=event.issue_id,
                    values={ATTACHMENT: item.to_string or ""},
                )
            ):
                continue
            if row is None or (not ours and row.status == AttachmentStatus.UPLOADING):
                genuine = True  # new, or its copy unfinished; else ours, or already copied
        elif item.from_value:  # removed
            row = known.get(str(item.from_value))
            if row is None or row.status == AttachmentStatus.DELETING:
                continue
            genuine = True
    return "genuine" if genuine else "echo"


def _lifecycle_reason(
    *,
    side: str,
    event: JiraEvent,
    link: IssueLink | None,
    organization: Organization,
    client: JiraClient,
) -> tuple[bool, str | None]:
    """For creates and deletes: (decided, reason)."""
    if event.is_delete:
        if link is None or link.status in CLOSED_LINK_STATUSES:
            return True, "echo: the issue is not linked (or its link is already closed)"
        return True, None
    if event.is_create:
        if link is not None and link.origin != side:
            return True, "echo: we created this issue"
        if link is not None and link.status == LinkStatus.LINKED:
            return True, "the issue is already linked (a repeated create event)"
        if IssueLink.objects.filter(organization=organization, status=LinkStatus.CREATING).exists():
            tag = client.get_property(event.issue_id, LINK_PROPERTY)
            if isinstance(tag, dict) and tag.get("origin") and tag.get("origin") != side:
                return True, "echo: this issue carries our tag (we are creating it)"
        return True, None
    return False, None


NO_MAPPED_CHANGE = "no mapped field changed"


@dataclass(frozen=True)
class Precheck:
    """What the pre-check found: why nothing needs doing (None: sync), and notes for the
    operator that go with the sync's record."""

    reason: str | None = None
    notes: tuple[str, ...] = ()


def _by_sync_account(event: JiraEvent, client: JiraClient) -> bool | None:
    """Was the event's change made by the site's sync account? None: cannot tell (no actor,
    as in some Data Center events, or the site could not say who its sync account is)."""
    actor = event.actor
    if actor is None:
        return None
    ids = sync_account_ids(client)
    if not ids:
        return None
    return bool({actor.account_id, actor.name, actor.key} & ids)


def echo_precheck(
    *,
    organization: Organization,
    side: str,
    event: JiraEvent,
    source_names: set[str],
    client: JiraClient,
    links: Sequence[IssueLink] | None = None,
) -> Precheck:
    """Why nothing needs doing for this organization (echo / no mapped change), if so.

    `side` is the side the event came from; `source_names` the fields mapped from it. Locks
    and actors decide together (DESIGN.md section 4, point 7): a change made by anyone but
    the site's sync account is genuine whatever the locks say; one made by the sync account
    is an echo when its lock says so, and reported when no lock does (another integration
    may be using the account; it is synced like any genuine change, which writes only what
    differs from the agreed state). Without an actor, the locks alone decide.
    """
    if links is None:  # else the issue's links, read already (of every organization)
        link = IssueLink.objects.filter(
            organization=organization, **{f"{side}_issue_id": event.issue_id}
        ).first()
    else:
        link = min(
            (
                x
                for x in links
                if x.organization_id == organization.pk
                and getattr(x, f"{side}_issue_id") == event.issue_id
            ),
            key=lambda x: x.pk,
            default=None,
        )
    decided, reason = _lifecycle_reason(
        side=side, event=event, link=link, organization=organization, client=client
    )
    if decided:
        return Precheck(reason)
    if link is not None and link.status == LinkStatus.DELETED:
        moved = link.state.get(MOVED_OUT)
        if isinstance(moved, dict) and moved.get("side") == side and not event.is_delete:
            return Precheck()  # moved out, and now in a mapped project again: synced again
        return Precheck("the pair is no longer synced (one of its issues was deleted)")
    if link is not None and link.status == LinkStatus.GONE:
        if organization.target_gone_policy != TargetGonePolicy.RECREATE:
            return Precheck("the pair is closed: the other side's copy was deleted at its site")
        return Precheck()  # the policy now creates the copy again
    if link is None or link.status != LinkStatus.LINKED:
        return Precheck()  # unknown so far: sync it (it may have just entered the shared scope)
    changed, before, identifiable = changed_values(event, source_names)
    known: list[bool | None] = []

    def by_sync() -> bool | None:
        """Asked only when it matters (a lock to consult, a change to report)."""
        if not known:
            known.append(_by_sync_account(event, client))
        return known[0]

    implied = status_by_resolution(event, source_names, changed, link.side_state(side))
    genuine = set(changed) | set(implied)
    if changed and by_sync() is not False:
        genuine -= echo_consume(
            organization=organization,
            side=side,
            issue_id=event.issue_id,
            values=changed,
            agreed=link.side_state(side),
            changed_from=before,
        )
    # The event's comment and attachments, each told genuine or echo the same way.
    about = {
        "organization": organization,
        "side": side,
        "link": link,
        "event": event,
        "locks": lambda: by_sync() is not False,
    }
    comment_state = _comment_state(**about)
    attachment_state = _attachment_state(**about)
    unlocked = sorted(genuine)
    if comment_state == "genuine" and event.comment.action != "deleted":
        unlocked.append("comment")
    if attachment_state == "genuine":
        unlocked.append("attachment")
    notes: tuple[str, ...] = ()
    if unlocked and by_sync():
        notes = (_report_sync_account(organization, side, event, unlocked),)
    if genuine or "genuine" in (comment_state, attachment_state) or not identifiable:
        return Precheck(notes=notes)
    if changed or "echo" in (comment_state, attachment_state):
        return Precheck("echo: every change in the event is our own write coming back")
    if comment_state == "restricted":
        return Precheck(
            "the comment is restricted to a role or group, or internal: it is not copied"
        )
    if comment_state == "in step":
        return Precheck("the comment is already in step")
    return Precheck(NO_MAPPED_CHANGE)


def _report_sync_account(
    organization: Organization, side: str, event: JiraEvent, names: list[str]
) -> str:
    """A change made as the sync account that none of our writes accounts for."""
    who = event.actor.display_name or event.actor.id if event.actor else "?"
    logger.warning(
        "delivery.sync_account_without_lock",
        extra={
            "organization": organization.public_id,
            "side": side,
            "issue": event.issue_key or event.issue_id,
            "fields": ", ".join(names),
            "actor": who,
        },
    )
    return (
        f"changed by the sync account ({who}) with no write of ours to account for it: "
        f"{', '.join(names)}; another integration may be using the account (synced as a "
        "genuine change)"
    )
