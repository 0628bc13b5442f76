"""The sync engine: one issue pair brought in step, in one direction.

`PUSH` carries local changes to a partner, `PULL` carries a partner's changes back. Under
the pair's lease, `sync_issue` plans (`plan.py`: the source issue, read now, compared per
field with the link's agreed state and, two-way, with the target) and then applies the plan
here: every write is preceded by its committed echo lock (DESIGN.md section 4, point 1), so
the webhook it causes is known as ours. `preview` is the plan alone (dry runs, backfill).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.rows import save_fields
from jiraapi.client import counting_calls
from jiraapi.errors import JiraNotFound, JiraPermanentError, JiraRateLimited, JiraTransientError
from organizations.models import DeletePolicy, ProjectMapping, TargetGonePolicy

from . import echo, fields, relations
from .attachments import apply_attachments
from .fields import Parent
from .jobs import Job, issue_in_push_scope, job_build, side_id, side_key
from .leases import (
    issue_link_lease,
    issue_link_lease_for,
    issue_link_lease_renew,
)
from .mapping import PUSH
from .models import (
    LINK_PROPERTY,
    MOVED_OUT,
    PEER,
    CommentLink,
    EchoLock,
    IssueLink,
    LinkStatus,
    SyncEvent,
    SyncResult,
)
from .plan import (
    CREATE,
    DELETE,
    NONE,
    SKIPPED,
    UPDATE,
    CommentOp,
    FieldWrite,
    Plan,
    carried,
    copy_of,
    plan,
    plan_delete,
)
from .sites import sync_account_ids
from .users import unmapped_user_record
from .versions import VERSION_FIELDS, known_names, versions_create
from .writes import (
    edit_with_fallback,
    find_created,
    plain_comment,
    transition_to,
)

logger = logging.getLogger(__name__)


UNLINK = "unlink"  # a delete whose policy only closes the pair
GONE = "target_gone"  # the target issue was deleted at its site: the pair is closed
# The organization's settings that say what a delete does to the copy.
DELETE_SETTINGS = (
    "local_delete_policy",
    "local_delete_status",
    "remote_delete_policy",
    "remote_delete_status",
)


class CreateUnsettled(JiraTransientError):
    """A create whose answer was lost cannot be checked yet; retry after `retry_after`."""


@dataclass
class Change:
    """What one sync did (or, for a preview, would do) to the target issue."""

    action: str = NONE  # create | update | delete | unlink | echo | skipped | none
    fields: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # refused before, not sent again
    attachments: list[str] = field(default_factory=list)  # "add a.txt", "delete b.png", ...
    calls: int = 0

    @classmethod
    def of(cls, planned: Plan) -> Change:
        unlink = planned.action == DELETE and planned.delete_policy == DeletePolicy.UNLINK
        return cls(
            action=UNLINK if unlink else planned.action,
            fields=planned.field_names,
            comments=planned.comment_notes,
            conflicts=list(planned.conflicts),
            notes=list(planned.notes),
            held=list(planned.held),
            attachments=[op.note[len("attachment ") :] for op in planned.attachments],
        )

    @property
    def wrote(self) -> bool:
        if self.action in (UNLINK, GONE):  # the pair is closed; nothing was written to Jira
            return False
        return self.action in (CREATE, DELETE) or bool(
            self.fields or self.comments or self.attachments
        )

    @property
    def result(self) -> str:
        if self.errors:
            return SyncResult.ERROR
        if self.action == "echo":
            return SyncResult.ECHO
        if self.action == GONE:
            return SyncResult.CLOSED
        if self.conflicts:
            return SyncResult.CONFLICT
        if self.action == SKIPPED:
            return SyncResult.SKIPPED
        return SyncResult.WRITTEN if self.wrote else SyncResult.NO_CHANGE


def comment_text_hash(body: Any) -> str:
    """Comments compare by their words, so each site's rendering of markup does not matter."""
    return fields.fingerprint("comment", body)


# --- echo locks around writes ---------------------------------------------------------------


def _expect(job: Job, link: IssueLink, values: dict[str, Any]) -> None:
    """Before a write: keep the pair's lease, and commit the echo locks of what we write.

    The target's sync account is learnt here (once per process and site), so the webhook
    our write causes is told from a person's change without a Jira call of its own.
    """
    if link.lease_owner:
        issue_link_lease_renew(link)
    sync_account_ids(job.target)
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


def _move_status(job: Job, link: IssueLink, wanted: str | None, change: Change) -> str | None:
    """Transition the target to `wanted`, by as many steps as its workflow needs.

    Returns the status the target is at when the move changed it (`wanted` on success),
    None when it did not move; a failure is recorded in `change.errors`. Every step's status
    is expected as an echo before the step (its webhook comes back as ours).
    """
    if not wanted:
        change.errors.append("no status to move to")
        return None
    target_id = side_id(link, job.target_side)

    def before_step(to: str, came_from: str | None) -> None:
        if link.lease_owner:
            issue_link_lease_renew(link)
        sync_account_ids(job.target)  # learnt before our first write there (see `_expect`)
        echo.echo_expect(
            organization=job.organization,
            side=job.target_side,
            issue_id=target_id,
            values={"status": to},
            previous={"status": came_from} if came_from else link.side_state(job.target_side),
        )

    moved = transition_to(
        job.target,
        side_key(link, job.target_side),
        wanted,
        screen_value=lambda field_id: _screen_value(job, field_id),
        before_step=before_step,
    )
    if moved.refused is not None:
        echo.echo_discard(
            organization=job.organization,
            side=job.target_side,
            issue_id=target_id,
            field="status",
            value=moved.refused,
        )
    if moved.error:
        change.errors.append(moved.error)
    return moved.reached


def _screen_value(job: Job, field_id: str) -> Any:
    """A required field of a transition screen: the source issue's resolution, or the value
    of a field mapped to it; None when the sync has none (a default is chosen)."""
    if field_id == "resolution":
        name = job.source_value("resolution")
        return {"name": name} if name else None
    for pair in job.pairs:
        if pair.target(job.way) == field_id and fields.kind_of(field_id).editable:
            value = carried(job, pair).target_value
            if value not in fields.EMPTY:
                return fields.kind_of(field_id).write(value, job.target.flavor)
    return None


# --- applying a plan ---------------------------------------------------------------------------


def apply(job: Job, link: IssueLink, planned: Plan) -> Change:
    """Carry a plan out against the target site; returns what was done."""
    change = Change.of(planned)
    if planned.action in (CREATE, UPDATE):
        planned = _fitted(planned, change)
    if planned.action == DELETE:
        _apply_delete(job, link, planned, change)
    elif planned.action == CREATE:
        _apply_create(job, link, planned, change)
        _apply_comments(job, link, planned.comments, change)
        change.notes += apply_attachments(job, link, planned.attachments)
    elif planned.action == UPDATE:
        _apply_update(job, link, planned, change)
        _apply_comments(job, link, planned.comments, change)
        change.notes += apply_attachments(job, link, planned.attachments)
    for w in planned.unmatched:
        unmapped_user_record(
            organization=job.organization,
            side=job.source_side,
            user=w.unmatched,
            field=w.source_field,
        )
    return change


def _fitted(planned: Plan, change: Change) -> Plan:
    """The plan with every text value over Jira's limit cut to fit, with a visible marker
    (recorded in `change.errors`). The target's agreed value is the cut copy it will hold,
    the source's stays its full value: the copy's webhook is an echo, and nothing syncs back."""
    if not any(
        fields.text_length(w.target_value) > fields.TEXT_LIMIT for w in planned.writes
    ) and not any(fields.text_length(op.body) > fields.TEXT_LIMIT for op in planned.comments):
        return planned
    writes = []
    for w in planned.writes:
        value, over = fields.fit(w.target_field, w.target_value)
        if over:
            change.errors.append(
                f"{w.target_field}: truncated, {over} characters over Jira's 32,767 limit"
            )
            w = replace(w, target_value=value)
        writes.append(w)
    ops = []
    for op in planned.comments:
        body, over = fields.fit_text(op.body) if op.verb != "delete" else (op.body, 0)
        if over:
            change.errors.append(
                f"comment {op.source_id}: truncated, {over} characters over Jira's 32,767 limit"
            )
            op = replace(op, body=body)
        ops.append(op)
    return replace(planned, writes=tuple(writes), comments=tuple(ops))


def _apply_update(job: Job, link: IssueLink, planned: Plan, change: Change) -> None:
    _follow_key(link, job.target_side, planned.target_key)
    state_s, state_t = link.side_state(job.source_side), link.side_state(job.target_side)
    for agreed in planned.in_step:
        state_s[agreed.source_field], state_t[agreed.target_field] = (
            agreed.source_value,
            agreed.target_value,
        )
        _note_left(job, link, agreed)
    if planned.writes:
        _expect(job, link, {w.target_field: w.target_value for w in planned.writes})
        payload: dict[str, Any] = {}
        named: dict[str, str] = {}  # a payload entry -> the field written (an Epic Link: parent)
        for w in planned.writes:
            entries = fields.kind_of(w.target_field).payload(
                w.target_field, w.target_value, job.target.flavor
            )
            payload.update(entries)
            named.update(dict.fromkeys(entries, w.target_field))
        written, refused = edit_with_fallback(job.target, side_key(link, job.target_side), payload)
        written = [named.get(name, name) for name in written]
        refused = {named.get(name, name): message for name, message in refused.items()}
        change.errors += [f"{name}: {message}" for name, message in refused.items()]
        standing = link.refused(job.target_side)
        for w in planned.writes:
            if w.target_field in written:
                state_s[w.source_field], state_t[w.target_field] = w.source_value, w.target_value
                standing.pop(w.target_field, None)
                _note_left(job, link, w)
                continue
            _unexpect(job, link, w.target_field)
            narrowed = _narrowed(job, link, w, change)
            if narrowed is not None:  # the names the target has were written
                message = f"{w.target_field}: {refused.get(w.target_field)}"
                if narrowed.target_value == w.target_value and message in change.errors:
                    change.errors.remove(message)  # every name written (versions created)
                state_s[w.source_field] = narrowed.source_value
                state_t[w.target_field] = narrowed.target_value
                standing.pop(w.target_field, None)
            elif w.target_field in refused:  # remembered, so it is not sent with every change
                standing[w.target_field] = {
                    "fingerprint": fields.fingerprint(w.target_field, w.target_value),
                    "message": refused[w.target_field],
                }
        link.refused_tidy()
    status = planned.status
    if status is not None:
        reached = _move_status(job, link, status.target_value, change)
        if reached is not None and reached.lower() == str(status.target_value).lower():
            state_s[status.source_field], state_t[status.target_field] = (
                status.source_value,
                status.target_value,
            )
        elif reached is not None:  # moved part of the way: the target's status as it is
            state_t[status.target_field] = reached
    save_fields(link, "state", "updated_at")


def _follow_key(link: IssueLink, side: str, key: str) -> None:
    """An issue moved to another project keeps its id and gets a new key: the link follows
    (the old key still resolves at Jira, but the link shows and uses the current one)."""
    name = f"{side}_issue_key"
    if key and getattr(link, name) and getattr(link, name) != key:
        setattr(link, name, key)
        save_fields(link, name, "updated_at")


def _narrowed(job: Job, link: IssueLink, refused: FieldWrite, change: Change) -> FieldWrite | None:
    """A refused list of components or versions: the names the target project has.

    Each site defines its own; a version the target lacks is created there first when the
    organization allows it (`_names_there`). A name still missing is recorded (in
    `change.errors`) and left out, and the rest is written. The agreed state then holds the
    source's list and the target's, so the same refusal is not retried on every event.
    """
    if not isinstance(refused.target_value, list):
        return None
    known, created = _names_there(job, refused.target_field, refused.target_value, change)
    if known is None or (set(refused.target_value) <= known and not created):
        return None  # refused for another reason
    kept = [name for name in refused.target_value if name in known]
    _left_out(job, refused.target_field, set(refused.target_value) - known, change)
    narrowed = FieldWrite(refused.source_field, refused.target_field, refused.source_value, kept)
    agreed = link.side_state(job.target_side).get(refused.target_field)
    if refused.target_field in link.side_state(job.target_side) and fields.same(
        refused.target_field, agreed, kept
    ):
        return narrowed  # the target already holds the names it has
    kind = fields.kind_of(refused.target_field)
    _expect(job, link, {refused.target_field: kept})
    try:
        job.target.edit_issue(
            side_key(link, job.target_side),
            {refused.target_field: kind.write(kept, job.target.flavor)},
        )
    except JiraPermanentError as exc:
        _unexpect(job, link, refused.target_field)
        if isinstance(exc, JiraNotFound):
            raise
        return None
    return narrowed


def _recover_lost_create(job: Job, link: IssueLink) -> dict | None:
    """An earlier create got no answer: it may have happened, or may still be under way at
    Jira (a slow answer we stopped waiting for), so look once that moment has passed.
    `find_created` does not trust search alone: it reads keys search does not show yet."""
    settle = timedelta(seconds=settings.SYNC_CREATE_SETTLE_SECONDS)
    waited = timezone.now() - link.create_started_at
    if waited < settle:
        raise CreateUnsettled(
            f"create for {job.issue_key} unconfirmed; checking once search settles",
            retry_after=(settle - waited).total_seconds(),
        )
    return find_created(
        job.target, project=job.target_project, link_id=link.pk, started=link.create_started_at
    )


def _narrow_create(
    job: Job, payload: dict, refused: JiraPermanentError, narrowed: dict, change: Change
) -> bool:
    """A create refused for components or versions the target project lacks: the payload
    keeps the names it has (recorded in `narrowed` and `change.errors`). False if the
    refusal was for anything else."""
    if isinstance(refused, JiraNotFound):
        return False
    for name in refused.errors:
        value = payload.get(name)
        if not value or name not in VERSION_FIELDS + ("components",):
            return False
        wanted = [str(v.get("name")) for v in value if isinstance(v, dict)]
        known, created = _names_there(job, name, wanted, change)
        kept = [n for n in wanted if n in (known or ())]
        if known is None or (kept == wanted and not created):
            return False
        _left_out(job, name, set(wanted) - known, change)
        narrowed[name] = kept
        payload[name] = fields.kind_of(name).write(kept, job.target.flavor)
    return bool(narrowed)


def _names_there(
    job: Job, field: str, wanted: list[str], change: Change
) -> tuple[set[str] | None, set[str]]:
    """The names the target project has for `field` (components or versions) after Jira
    refused `wanted`, and those of them created now: versions it lacks are created first
    when the organization allows it (noted in `change.notes`; a refusal in `change.errors`).
    None: not a field whose values belong to a project."""
    project = job.target_project
    known = known_names(job.target, project, field)
    if known is None:
        return None, set()
    if set(wanted) <= known:  # the cached project is older than Jira's refusal
        known = known_names(job.target, project, field, fresh=True) or set()
    missing = set(wanted) - known
    if missing and field in VERSION_FIELDS and job.organization.create_missing_versions:
        made, problems = versions_create(client=job.target, project=project, names=missing)
        if made:
            change.notes.append(
                f"{field}: created the missing version(s) {', '.join(sorted(made))} in {project}"
            )
        change.errors += [f"{field}: version not created in {project}: {p}" for p in problems]
        return known | made, made
    return known, set()


def _left_out(job: Job, field: str, missing: set[str], change: Change) -> None:
    if not missing:
        return
    why = ""
    if field in VERSION_FIELDS and not job.organization.create_missing_versions:
        why = " (creating missing versions is off for this organization)"
    change.errors.append(
        f"{field}: not in {job.target_project}, left out: {', '.join(sorted(missing))}{why}"
    )


def _unparent_create(
    job: Job, payload: dict, refused: JiraPermanentError, narrowed: dict, change: Change
) -> bool:
    """A create refused for its parent alone (e.g. the epic's copy is not an Epic there):
    the issue is created without it, recorded (`narrowed["parent"]`: None). A sub-task
    cannot be, and stays refused. False if the refusal was for anything else."""
    kind = fields.kind_of("parent")
    keys = set(kind.payload("parent", {"key": "", "subtask": False}, job.target.flavor))
    keys |= set(kind.payload("parent", {"key": "", "subtask": True}, job.target.flavor))
    named = set(refused.errors)
    if isinstance(refused, JiraNotFound) or not named or not named <= keys & set(payload):
        return False
    if (payload.get("issuetype") or {}).get("name", "").lower() in ("sub-task", "subtask"):
        return False
    for name in named:
        change.errors.append(
            f"parent: {refused.errors[name]} ({payload.pop(name)!r}); created without it"
        )
    narrowed["parent"] = None
    return True


def _create_target(
    job: Job, link: IssueLink, planned: Plan, change: Change, narrowed: dict
) -> dict:
    """Create the target issue, tagged with the link in the same call. Components and
    versions the target project lacks are left out (`narrowed`: field -> names kept)."""
    link.status = LinkStatus.CREATING
    link.create_started_at = timezone.now()
    setattr(link, f"{job.source_side}_issue_key", job.issue_key)
    link.save()
    payload: dict[str, Any] = {"project": {"key": job.target_project}}
    for w in planned.writes:
        kind = fields.kind_of(w.target_field)
        if kind.editable and w.target_value not in fields.EMPTY:
            payload.update(kind.payload(w.target_field, w.target_value, job.target.flavor))
    payload.setdefault("issuetype", {"name": "Task"})
    if not job.target.is_cloud and str(payload["issuetype"].get("name", "")).lower() == "epic":
        # Data Center requires an Epic Name to create an Epic: its summary, unless mapped.
        payload.setdefault(fields.epic_name_field(), str(payload.get("summary") or "")[:255])
    sync_account_ids(job.target)  # learnt before our first write there (see `_expect`)
    tag = {"linkId": link.pk, "origin": job.source_side, "id": job.issue_id, "key": job.issue_key}
    try:
        try:
            return job.target.create_issue(payload, properties={LINK_PROPERTY: tag})
        except JiraPermanentError as exc:
            if not (
                _unparent_create(job, payload, exc, narrowed, change)
                or _narrow_create(job, payload, exc, narrowed, change)
            ):
                raise
            return job.target.create_issue(payload, properties={LINK_PROPERTY: tag})
    except (JiraPermanentError, JiraRateLimited):
        # Refused for sure (a 4xx, or a 429 before any work): nothing was created.
        link.status = LinkStatus.NEW
        save_fields(link, "status", "updated_at")
        raise


def _apply_create(job: Job, link: IssueLink, planned: Plan, change: Change) -> None:
    src, tgt = job.source_side, job.target_side
    found = None
    narrowed: dict[str, list] = {}
    if link.status == LinkStatus.CREATING and link.create_started_at:
        found = _recover_lost_create(job, link)
    if found is None:
        found = _create_target(job, link, planned, change, narrowed)
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
        title=f"{job.issue_key}: {job.issue['fields'].get('summary') or ''}"[:255],
        global_id=f"jira-sync:{src}:{job.issue_id}",
    )
    state_s, state_t = link.side_state(src), link.side_state(tgt)
    # What the new issue holds where we did not choose: its status (set by its workflow),
    # and the fields the unmapped-user policy leaves alone (a project may assign by default).
    reread = [
        w.target_field
        for w in planned.writes
        if w.leave or not fields.kind_of(w.target_field).editable
    ]
    current = job.target.get_issue(found["key"], fields=reread)["fields"] if reread else {}
    for w in planned.writes:
        state_s[w.source_field] = w.source_value
        _note_left(job, link, w)
        if w.leave:
            state_t[w.target_field] = fields.read(w.target_field, current)
        elif fields.kind_of(w.target_field).editable:
            state_t[w.target_field] = narrowed.get(w.target_field, w.target_value)
        else:
            state_t[w.target_field] = _status_after_create(
                job, link, w.target_value, change, fields.read(w.target_field, current)
            )
    save_fields(link, "state", "updated_at")


def _note_left(job: Job, link: IssueLink, w: FieldWrite) -> None:
    """Remember (or forget) a source user the target's field was left without."""
    if w.leave or link.left_user(job.source_side, w.source_field):
        link.set_left_user(
            job.source_side, w.source_field, (w.unmatched or {}).get("id") if w.leave else None
        )


def _status_after_create(
    job: Job, link: IssueLink, wanted: str | None, change: Change, current: str | None
) -> str:
    if not wanted or not current or wanted.lower() == current.lower():
        return current
    return _move_status(job, link, wanted, change) or current


def _apply_delete(job: Job, link: IssueLink, planned: Plan, change: Change) -> None:
    """The source issue is confirmed gone: the plan's delete policy for the target's copy.
    A create whose answer was lost (to be retried) may have made the copy: it is looked for
    first (by its tag), so the policy applies to it; with none made, the pair only closes."""
    if not side_id(link, job.target_side):
        found = _recover_lost_create(job, link)
        if found is None:
            change.action = UNLINK
            change.notes.append(f"{job.issue_key} was deleted before its copy was made")
            link.status = LinkStatus.DELETED
            save_fields(link, "status", "updated_at")
            return
        setattr(link, f"{job.target_side}_issue_id", str(found["id"]))
        setattr(link, f"{job.target_side}_issue_key", found["key"])
        link.save()
    target_key = side_key(link, job.target_side)
    if planned.delete_policy == DeletePolicy.DELETE:
        target_id = side_id(link, job.target_side)
        # Committed first: when the target's site reports this delete, it is known as ours.
        echo.echo_expect_deletion(
            organization=job.organization, side=job.target_side, issue_id=target_id
        )
        try:
            job.target.delete_issue(target_key)
        except JiraNotFound:
            pass
        except Exception:
            echo.echo_discard(
                organization=job.organization,
                side=job.target_side,
                issue_id=target_id,
                field=echo.DELETION,
            )
            raise
    elif planned.delete_policy == DeletePolicy.TRANSITION:
        status = (
            job.organization.local_delete_status
            if job.way == PUSH
            else job.organization.remote_delete_status
        )
        _move_status(job, link, status, change)
    elif planned.delete_policy == DeletePolicy.COMMENT:
        where = "our Jira" if job.way == PUSH else f"{job.organization.name}'s Jira"
        text = f"{job.issue_key} was deleted in {where}; this issue is no longer synced."
        if planned.moved_to and job.way == PUSH:  # our project names stay ours
            text = (
                f"{job.issue_key} was moved out of the projects synced with you; this issue "
                "is no longer synced."
            )
        elif planned.moved_to:
            text = (
                f"{job.issue_key} was moved to project {planned.moved_to} in {where}, which "
                "is not synced; this issue is no longer synced."
            )
        body = plain_comment(text, job.target)
        _expect(job, link, {"comment": body})
        job.target.add_comment(target_key, body)
    link.status = LinkStatus.DELETED  # UNLINK: only this
    save_fields(link, "status", "updated_at")


def _apply_comments(job: Job, link: IssueLink, ops: tuple[CommentOp, ...], change: Change) -> None:
    src, tgt = job.source_side, job.target_side
    target_key = side_key(link, tgt)
    for op in ops:
        if op.verb == "delete":
            with contextlib.suppress(JiraNotFound):
                job.target.delete_comment(target_key, getattr(op.link, f"{tgt}_comment_id"))
            op.link.delete()
            continue
        _expect(job, link, {"comment": op.body})
        hashes = {f"{src}_hash": op.digest, f"{tgt}_hash": comment_text_hash(op.body)}
        if op.verb == "add" and op.link is not None:  # a pair whose copy went with its issue
            created = job.target.add_comment(target_key, op.body)
            setattr(op.link, f"{tgt}_comment_id", str(created["id"]))
            for name, value in hashes.items():
                setattr(op.link, name, value)
            op.link.save()
        elif op.verb == "add":
            created = job.target.add_comment(target_key, op.body)
            CommentLink.objects.create(
                issue_link=link,
                origin=src,
                **{f"{src}_comment_id": op.source_id, f"{tgt}_comment_id": str(created["id"])},
                **hashes,
            )
        else:
            copy_id = getattr(op.link, f"{tgt}_comment_id")
            try:
                job.target.edit_comment(target_key, copy_id, op.body)
            except JiraNotFound:
                copy_id = _comment_copy_gone(job, link, op, copy_id, change)
                setattr(op.link, f"{tgt}_comment_id", copy_id)
            for name, value in hashes.items():
                setattr(op.link, name, value)
            op.link.save()


def _comment_copy_gone(
    job: Job, link: IssueLink, op: CommentOp, copy_id: str, change: Change
) -> str:
    """Editing a copy that someone deleted at the target (its event never reached us: a
    push-only partner, or a lost webhook). With the issue still there, the edited comment is
    copied again (the source is what the target follows; the lock taken for the edit covers
    the new copy); with the issue gone, the issue pair is closed by the caller."""
    if _target_gone(job, link):
        raise JiraNotFound(f"{side_key(link, job.target_side)} is gone")
    created = job.target.add_comment(side_key(link, job.target_side), op.body)
    change.notes.append(
        f"comment {op.source_id}: its copy {copy_id} was deleted at "
        f"{side_key(link, job.target_side)}; copied again with the edit"
    )
    return str(created["id"])


# --- the target issue is gone ------------------------------------------------------------------


def plan_and_apply(
    job: Job, link: IssueLink, *, delivery_id: int | None, started: float | None
) -> Change:
    """Plan and apply; a target issue deleted at its site closes the pair (or is created
    again, by the organization's policy) instead of failing every later delivery."""
    if job.issue is None:
        # The source is gone: its delete policy as it is now. The organization was read when
        # the delivery started, maybe before the admin changed the policy and then deleted
        # the issue (any delivery of the issue that reads it gone applies the delete).
        job.organization.refresh_from_db(fields=DELETE_SETTINGS)
    recreate = job.organization.target_gone_policy == TargetGonePolicy.RECREATE
    if link.status == LinkStatus.GONE and recreate and job.issue is not None:
        _reopen(job, link)  # closed under the old policy; the policy now recreates
    try:
        return apply(job, link, plan(job, link))
    except JiraNotFound as exc:
        if _source_gone(job, exc):  # deleted at its site after this sync read it: a delete
            change = plan_and_apply(
                replace(job, issue=None), link, delivery_id=delivery_id, started=started
            )
            change.notes.insert(0, f"{job.issue_key} was deleted at its site during the sync")
            return change
        if not _target_gone(job, link):
            raise
    gone = _close_gone(job, link)
    if not recreate or job.issue is None:
        return gone
    record(job, link, gone, delivery_id=delivery_id, started=started)
    _reopen(job, link)
    change = apply(job, link, plan(job, link))
    change.notes.insert(0, f"created again: {gone.notes[0]}")
    return change


def _source_gone(job: Job, exc: JiraNotFound) -> bool:
    """After a 404 from the source site: is the source issue itself gone (deleted after the
    sync read it)? A GET by id says."""
    site = getattr(job.source, "base_url", "")
    if job.issue is None or not site or exc.base_url != site:
        return False
    try:
        job.source.get_issue(job.issue_id, fields=["summary"])
    except JiraNotFound:
        return True
    return False


def _target_gone(job: Job, link: IssueLink) -> bool:
    """After a 404 on the target: is the target issue itself gone? A GET by id says (a 404
    may also name a comment, a transition or the source; an issue moved to another project
    keeps its id)."""
    target_id = side_id(link, job.target_side)
    if link.status != LinkStatus.LINKED or not target_id:
        return False
    try:
        job.target.get_issue(target_id, fields=["summary"])
    except JiraNotFound:
        return True
    return False


def _close_gone(job: Job, link: IssueLink) -> Change:
    """Close the pair whose target issue is gone: no echo of ours will come from it."""
    target_id, target_key = side_id(link, job.target_side), side_key(link, job.target_side)
    EchoLock.objects.filter(
        organization=job.organization, side=job.target_side, issue_id=str(target_id)
    ).delete()
    where = f"{job.organization.name}'s Jira" if job.way == PUSH else "our Jira"
    note = (
        f"{target_key}, the copy of {job.issue_key}, is gone from {where} (deleted there: "
        f"Jira answers 404 for it)"
    )
    if job.organization.target_gone_policy != TargetGonePolicy.RECREATE:
        note += "; the pair is closed and no longer synced"
    link.status = LinkStatus.GONE
    link.last_error = ""
    save_fields(link, "status", "last_error", "updated_at")
    logger.warning(
        "sync.target_gone",
        extra={
            "organization": job.organization.public_id,
            "direction": job.way,
            "source": job.issue_key,
            "target": target_key,
        },
    )
    return Change(action=GONE, fields=[f"{job.target_side} issue gone"], notes=[note])


def _reopen(job: Job, link: IssueLink) -> None:
    """Make a closed pair new again on the target's side, so the plan creates the copy anew.

    Comment pairs keep their source comment and lose their copy, so the new issue gets
    every comment once (`plan_comments` re-pairs them).
    """
    tgt = job.target_side
    setattr(link, f"{tgt}_issue_id", None)
    setattr(link, f"{tgt}_issue_key", "")
    link.origin = job.source_side
    link.status = LinkStatus.NEW
    link.create_started_at = None
    # The pair's message numbers with a partner install go on: they order its messages.
    link.state = {PEER: link.state[PEER]} if PEER in link.state else {}
    link.save()
    link.comments.update(**{f"{tgt}_comment_id": None, f"{tgt}_hash": ""})
    link.attachments.all().delete()  # the new copy gets every source attachment anew


def sync_target_gone(job: Job) -> Change:
    """The target issue of `job`'s pair was found gone by the drift check (no sync met its
    404 yet): the pair is closed, or its copy created again, by the organization's policy,
    as a sync that met the 404 would have done. Asks the target site again (GET by id)."""
    link = IssueLink.objects.get(
        organization=job.organization, **{f"{job.source_side}_issue_id": job.issue_id}
    )
    with counting_calls() as calls, issue_link_lease(link) as link:
        if not _target_gone(job, link):
            return Change(notes=[f"{side_key(link, job.target_side)} is there after all"])
        change = _close_gone(job, link)
        recreate = job.organization.target_gone_policy == TargetGonePolicy.RECREATE
        if recreate and job.issue is not None:
            record(job, link, change)
            note = change.notes[0]
            _reopen(job, link)
            change = apply(job, link, plan(job, link))
            change.notes.insert(0, f"created again: {note}")
        change.calls = calls.count
        record(job, link, change)
    return change


# --- moved issues ------------------------------------------------------------------------------


def sync_moved_out(
    job: Job,
    link: IssueLink,
    *,
    moved_to: str,
    old_key: str,
    delivery_id: int | None = None,
    started: float | None = None,
) -> Change:
    """The source issue of `link` (`old_key` before the move, `job.issue_key` now) moved to
    `moved_to`, a project no mapping of the organization names: the organization's delete
    policy, as if the issue were deleted (its copy gets the comment, the status, is deleted,
    or the pair only closes). The pair is marked, so a move back into a mapped project
    syncs it again (`_moved_back`)."""
    with counting_calls() as calls, issue_link_lease(link) as link:
        if link.status != LinkStatus.LINKED:
            return Change()
        planned = replace(plan_delete(replace(job, issue=None), link), moved_to=moved_to)
        # The copy's side knows the issue by its key before the move.
        change = apply(replace(job, issue_key=old_key or job.issue_key), link, planned)
        change.notes.insert(
            0,
            f"{old_key or job.issue_key} moved out to {moved_to} (now {job.issue_key}), a "
            f"project not mapped for {job.organization.name}: the delete policy "
            f"({planned.delete_policy}) applied as if it were deleted",
        )
        link.state[MOVED_OUT] = {
            "side": job.source_side,
            "to": moved_to,
            "at": timezone.now().isoformat(),
        }
        save_fields(link, "state", "updated_at")
        change.calls = calls.count
        record(job, link, change, delivery_id=delivery_id, started=started)
    logger.info(
        "sync.issue_moved_out",
        extra={
            "organization": job.organization.public_id,
            "issue": job.issue_key,
            "project": moved_to,
            "policy": planned.delete_policy,
        },
    )
    return change


def _moved_back(job: Job, link: IssueLink) -> str:
    """A pair closed by a move out (`sync_moved_out`) whose source issue is in a mapped
    project again: it syncs again, with its copy when that is still there (every field
    written anew: the copy may have been moved to a status or commented meanwhile), else
    with a new copy (the delete policy deleted it). Never a second copy."""
    tgt = job.target_side
    project = job.project_mapping.local_project_key
    if job.way != PUSH:
        project = job.project_mapping.remote_project_key
    copy_key = side_key(link, tgt)
    alive = bool(side_id(link, tgt))
    if alive:
        try:
            job.target.get_issue(side_id(link, tgt), fields=["summary"])
        except JiraNotFound:
            alive = False
    if not alive:
        _reopen(job, link)
        return (
            f"{job.issue_key} moved back into {project}: its copy {copy_key} is gone, so it is "
            "created again"
        )
    keep = {name: link.state[name] for name in (PEER, "left") if name in link.state}
    link.state = keep
    link.status = LinkStatus.LINKED
    save_fields(link, "state", "status", "updated_at")
    return f"{job.issue_key} moved back into {project}: synced again with {copy_key}"


# --- running a job ------------------------------------------------------------------------------


def preview(job: Job) -> Change:
    """What `sync_issue` would do, without writing anything anywhere (a dry run)."""
    lookup = {f"{job.source_side}_issue_id": job.issue_id}
    link = IssueLink.objects.filter(organization=job.organization, **lookup).first()
    planned = plan(job, link or IssueLink(organization=job.organization, **lookup))
    change = Change.of(planned)
    if link is not None and relations.relations_due(job, link):
        relations.relations_sync(job, link, change, dry_run=True)
    return change


# The largest value a PositiveIntegerField holds on every database (about 24.8 days).
MAX_LATENCY_MS = 2**31 - 1


def latency_ms(started: float | None) -> int | None:
    """Milliseconds since `started` (epoch seconds), within 0 .. MAX_LATENCY_MS: a sender's
    clock ahead of ours counts as 0, an event older than the bound as the bound."""
    if started is None:
        return None
    elapsed = (time.time() - started) * 1000
    if not math.isfinite(elapsed):
        return None
    return int(min(max(elapsed, 0), MAX_LATENCY_MS))


_EVENT_COLUMNS = (
    "organization_id",
    "issue_link_id",
    "delivery_id",
    "direction",
    "action",
    "fields",
    "result",
    "calls",
    "latency_ms",
    "message",
    "created_at",
)
_EVENT_SQL = (
    f"INSERT INTO {SyncEvent._meta.db_table} ({', '.join(_EVENT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))})"
)


def _event_insert(**values: Any) -> None:
    """One SyncEvent row (`_EVENT_COLUMNS` but `created_at`, which is now) by one statement
    written once: every delivery records one, and the ORM would build a model and compile
    its INSERT each time, at more than the cost of running it."""
    connection = transaction.get_connection()
    values["fields"] = SyncEvent._meta.get_field("fields").get_db_prep_save(
        values["fields"], connection
    )
    values["created_at"] = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_SQL, [values[column] for column in _EVENT_COLUMNS])


def record(
    job: Job,
    link: IssueLink | None,
    change: Change,
    *,
    delivery_id: int | None = None,
    started: float | None = None,
) -> None:
    """Record what a sync did. Never raises: it runs after Jira was written, and a failure
    to record must not fail (and so retry) a delivery whose write is done."""
    try:
        # Inside a transaction, a savepoint: a refused row leaves the caller's intact (alone,
        # the INSERT is its own transaction).
        outer = transaction.get_connection().in_atomic_block
        with transaction.atomic() if outer else contextlib.nullcontext():
            _event_insert(
                organization_id=job.organization.pk,
                issue_link_id=link.pk if link is not None else None,
                delivery_id=delivery_id,
                direction=job.way,
                action=change.action,
                fields=fields.without_nul(
                    change.fields
                    + [f"comment {c}" for c in change.comments]
                    + [f"attachment {a}" for a in change.attachments]
                ),
                result=change.result,
                calls=change.calls,
                latency_ms=latency_ms(started),
                message=fields.without_nul(
                    "; ".join(change.notes + change.conflicts + change.errors + change.held)
                ),
            )
    except Exception:
        logger.exception(
            "sync.record_failed",
            extra={"organization": job.organization.public_id, "issue": job.issue_key},
        )


# How many issues above one are synced first (a sub-task's story, then its epic).
MAX_PARENT_DEPTH = 3


def _parent_first(job: Job, link: IssueLink, depth: int) -> bool:
    """The source issue's parent (or epic), synced before the issue when it has no copy at
    the target yet and is in scope (its project mapped for this organization, and the push
    JQL), so the issue is created (or moved) under the parent's copy. A nested sync of the
    parent's own pair: its lease, its echo locks, its record. Costs nothing when the parent
    did not change (compared in memory with the agreed state). True: it ran that sync."""
    if job.issue is None or job.values is not None or job.organization.is_app:
        return False
    if depth >= MAX_PARENT_DEPTH or link.status == LinkStatus.DELETED:
        return False
    if link.status == LinkStatus.GONE and (
        job.organization.target_gone_policy != TargetGonePolicy.RECREATE
    ):
        return False  # the pair is closed: nothing is created under a parent
    pair = next(
        (p for p in job.pairs if isinstance(fields.kind_of(p.target(job.way)), Parent)), None
    )
    if pair is None:
        return False
    s_name = pair.source(job.way)
    value = job.source_value(s_name)
    if not value:
        return False
    agreed = link.state.get(job.source_side, {})
    if (
        side_id(link, job.target_side)
        and s_name in agreed
        and fields.same(s_name, value, agreed[s_name])
    ):
        return False
    if copy_of(job, value) is not None:
        return False
    project = str(value.get("key") or "").rpartition("-")[0]
    source_project = "local_project_key" if job.way == PUSH else "remote_project_key"
    mapping = ProjectMapping.objects.filter(
        organization=job.organization, **{source_project: project}
    ).first()
    if mapping is None or not project:
        return False  # out of scope: the plan records it
    try:
        issue = job.source.get_issue(value.get("id") or value["key"])
    except JiraNotFound:
        return False
    parent_job = job_build(
        project_mapping=mapping,
        way=job.way,
        issue_id=str(issue["id"]),
        issue_key=str(issue.get("key") or ""),
        issue=issue,
        comments_changed=True,
    )
    if (
        job.way == PUSH
        and mapping.push_jql
        and not issue_in_push_scope(parent_job.source, mapping, parent_job)
    ):
        return False
    note = f"synced first: the parent of {job.issue_key}"
    try:
        sync_issue(parent_job, notes=(note,), parent_depth=depth + 1)
    except JiraPermanentError as exc:
        # The parent's copy was refused: the issue goes on without it (the plan records
        # "parent not synced"); the parent's own delivery reports the refusal.
        logger.warning(
            "sync.parent_first_refused",
            extra={
                "organization": job.organization.public_id,
                "issue": job.issue_key,
                "parent": parent_job.issue_key,
                "error": str(exc),
            },
        )
    return True


def sync_issue(
    job: Job,
    *,
    delivery_id: int | None = None,
    started: float | None = None,
    notes: tuple[str, ...] = (),
    parent_depth: int = 0,
) -> Change:
    """Bring the target issue in step with the source issue `job.issue`; `notes` (from the
    event's pre-check) go into the sync's record. A parent with no copy at the target is
    synced first (`_parent_first`)."""
    lease = issue_link_lease_for(
        organization=job.organization,
        side=job.source_side,
        issue_id=job.issue_id,
        issue_key=job.issue_key,
    )
    with lease as link:
        # Its own pair's sync (its own lease), and its own calls, while this pair is held.
        if _parent_first(job, link, parent_depth):
            link.refresh_from_db()  # as it is after the parent's sync
        with counting_calls() as calls:
            _follow_key(link, job.source_side, str((job.issue or {}).get("key") or ""))
            back = ""
            moved = link.state.get(MOVED_OUT)
            if (
                link.status == LinkStatus.DELETED
                and isinstance(moved, dict)
                and moved.get("side") == job.source_side  # the moved issue, not its copy
                and job.issue
            ):
                back = _moved_back(job, link)
            change = plan_and_apply(job, link, delivery_id=delivery_id, started=started)
            if relations.relations_due(job, link):  # in memory: no query on an ordinary edit
                relations.relations_sync(job, link, change)
                if change.action == NONE and change.fields:
                    change.action = UPDATE
            change.notes[:0] = [*notes, back] if back else notes
            change.calls = calls.count
            # Written with the lease's release (`issue_link_lease_for`).
            link.last_error = fields.without_nul("; ".join(change.errors + change.held))
            record(job, link, change, delivery_id=delivery_id, started=started)
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


__all__ = [
    "GONE",
    "SKIPPED",
    "UNLINK",
    "Change",
    "CreateUnsettled",
    "FieldWrite",
    "Job",
    "preview",
    "record",
    "sync_issue",
    "sync_target_gone",
]
