"""Planning a sync: what bringing the target issue in step would take, without doing it.

Planning writes nothing (no Jira write, no database write, no change to the job or the
link); it may read the target issue (two-way conflict checks) and the source comments. A
dry run, and the backfill's preview, is a plan that is never applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.utils.dateparse import parse_datetime

from jiraapi.errors import JiraPermanentError
from jiraapi.events import field_id_of
from organizations.models import (
    ConflictPolicy,
    ConnectionRole,
    ConnectionType,
    DeletePolicy,
    UnmappedUserPolicy,
)

from . import fields
from .attachments import AttachmentOp, plan_attachments
from .fields import Crossing, Unmatched, Unresolved
from .jobs import Job, side_id, side_key
from .mapping import (
    PULL,
    PUSH,
    FieldPair,
    default_user_for,
    issue_type_map_for,
    user_map_for,
)
from .models import CLOSED_LINK_STATUSES, REFUSED, CommentLink, IssueLink, LinkStatus, Side
from .writes import comment_back, comment_copy

CREATE, UPDATE, DELETE, SKIPPED, NONE = "create", "update", "delete", "skipped", "none"


@dataclass(frozen=True)
class FieldWrite:
    """One field carried across: its value at the source and the value meant for the target."""

    source_field: str
    target_field: str
    source_value: Any
    target_value: Any
    # A source user with no counterpart at the target (canonical), and whether the policy
    # leaves the target's value alone (then `target_value` is not written).
    unmatched: dict | None = None
    leave: bool = False
    # The source's parent (canonical) when it has no copy at the target (`target_value` is
    # then None, and the plan says what becomes of the child).
    unresolved: dict | None = None


@dataclass(frozen=True)
class CommentOp:
    verb: str  # add | edit | delete
    source_id: str
    body: Any = None  # the target's copy (add, edit)
    digest: str = ""  # the source comment's fingerprint
    link: CommentLink | None = None  # the existing pair (edit, delete)


@dataclass(frozen=True)
class Plan:
    action: str = NONE  # create | update | delete | skipped | none
    writes: tuple[FieldWrite, ...] = ()  # edits (update), every mapped value (create)
    status: FieldWrite | None = None  # a status to reach by transition
    in_step: tuple[FieldWrite, ...] = ()  # already equal: only the agreed state moves
    conflicts: tuple[str, ...] = ()
    delete_policy: str = ""
    comments: tuple[CommentOp, ...] = ()
    notes: tuple[str, ...] = ()  # why the plan is what it is, for the operator
    held: tuple[str, ...] = ()  # values not sent again: the target refused them before
    target_key: str = ""  # the target issue's key as read now (it changes when moved)
    moved_to: str = ""  # a delete: the source issue moved out to this unmapped project
    attachments: tuple[AttachmentOp, ...] = ()

    @property
    def field_names(self) -> list[str]:
        if self.action == DELETE:
            return [f"policy {self.delete_policy}"]
        names = {w.target_field for w in self.writes}
        if self.action == CREATE:
            names = {w.target_field for w in self.writes if w.target_value not in fields.EMPTY}
        if self.status is not None:
            names.add(self.status.target_field)
        return sorted(names)

    @property
    def unmatched(self) -> tuple[FieldWrite, ...]:
        """The carried values whose user has no counterpart at the target."""
        return tuple(w for w in (*self.writes, *self.in_step) if w.unmatched)

    @property
    def comment_notes(self) -> list[str]:
        return [f"{op.verb} {op.source_id}" for op in self.comments]


def crossing(job: Job, pair: FieldPair) -> Crossing:
    def find_user(email: str) -> dict | None:
        if email not in job.user_cache:
            found = job.target.find_user(email)
            job.user_cache[email] = fields.user_of(found) if found else None
        return job.user_cache[email]

    return Crossing(
        forward=pair.value_map_for(job.way),
        source_flavor=job.source.flavor,
        target_flavor=job.target.flavor,
        issue_types=issue_type_map_for(job.project_mapping, job.way),
        find_user=find_user,
        users=user_map_for(job.organization, job.way),
        resolve_issue=lambda issue: copy_of(job, issue),
    )


def copy_of(job: Job, issue: dict) -> dict | None:
    """The target's copy of a source issue (`{"id", "key"}`; by id, or by key for a Data
    Center Epic Link, which names only the key), or None when it has none (one query; asked
    only for a parent that changed, or on create)."""
    src, tgt = job.source_side, job.target_side
    if issue.get("id"):
        lookup = {f"{src}_issue_id": str(issue["id"])}
    elif issue.get("key"):
        lookup = {f"{src}_issue_key": str(issue["key"])}
    else:
        return None
    link = (
        IssueLink.objects.filter(organization=job.organization, **lookup)
        .exclude(status__in=CLOSED_LINK_STATUSES)
        .exclude(**{f"{tgt}_issue_id": None})
        .values(f"{tgt}_issue_id", f"{tgt}_issue_key")
        .first()
    )
    if link is None:
        return None
    return {"id": str(link[f"{tgt}_issue_id"]), "key": link[f"{tgt}_issue_key"]}


def carried(job: Job, pair: FieldPair) -> FieldWrite:
    """The pair's value at the source now, and what it becomes at the target."""
    s_name, t_name = pair.source(job.way), pair.target(job.way)
    value = job.source_value(s_name)
    wanted = fields.kind_of(t_name).cross(value, crossing(job, pair))
    if isinstance(wanted, Unmatched):
        return _unmatched(job, s_name, t_name, value, wanted.user)
    if isinstance(wanted, Unresolved):
        return FieldWrite(s_name, t_name, value, None, unresolved=wanted.issue)
    return FieldWrite(s_name, t_name, value, wanted)


def _parent_note(job: Job, w: FieldWrite, outcome: str) -> str:
    where = "the partner's Jira" if job.way == PUSH else "our Jira"
    key = (w.unresolved or {}).get("key") or (w.unresolved or {}).get("id") or "?"
    return f"{w.target_field}: {key} is not synced to {where} (parent not synced); {outcome}"


def _unmatched(job: Job, s_name: str, t_name: str, value: Any, user: dict) -> FieldWrite:
    """A user with no counterpart: the organization's unmapped-user policy decides."""
    policy = job.organization.unmapped_user_policy
    default = default_user_for(job.organization, job.way)
    if policy == UnmappedUserPolicy.UNASSIGN:
        return FieldWrite(s_name, t_name, value, None, unmatched=user)
    if policy == UnmappedUserPolicy.DEFAULT and default:
        target = {"id": default, "email": "", "name": ""}
        return FieldWrite(s_name, t_name, value, target, unmatched=user)
    return FieldWrite(s_name, t_name, value, None, unmatched=user, leave=True)


def _unmatched_notes(job: Job, writes: tuple[FieldWrite, ...]) -> tuple[str, ...]:
    where = "the partner's Jira" if job.way == PUSH else "our Jira"
    notes = []
    for w in writes:
        user = w.unmatched or {}
        who = user.get("name") or user.get("id") or "?"
        if w.leave:
            outcome = "its value there is left as it is"
        elif w.target_value:
            outcome = f"set to the default user {w.target_value['id']}"
        else:
            outcome = "cleared there (unassigned)"
        notes.append(
            f"{w.target_field}: {who} ({user.get('id')}) has no counterpart in {where} "
            f"(add them to the user map); {outcome}"
        )
    return tuple(notes)


def plan(job: Job, link: IssueLink) -> Plan:
    """What `apply` would do to bring the target in step with `job.issue`."""
    if job.issue is None:
        return plan_delete(job, link)
    if link.status in CLOSED_LINK_STATUSES:
        return Plan(NONE)
    held_back = not_passed_on(job)
    if held_back:
        return Plan(SKIPPED, notes=(held_back,))
    if not side_id(link, job.target_side):
        if job.way == PULL and not job.project_mapping.create_local_issues:
            return Plan(SKIPPED)
        writes = tuple(carried(job, p) for p in job.pairs)
        notes = _unmatched_notes(job, tuple(w for w in writes if w.unmatched))
        for w in writes:
            if w.unresolved is None:
                continue
            if (w.source_value or {}).get("subtask"):
                # A sub-task cannot exist at the target without its parent there.
                note = _parent_note(job, w, f"the sub-task {job.issue_key} is not created")
                return Plan(SKIPPED, notes=(note,))
            notes += (_parent_note(job, w, "created without it"),)
        return Plan(
            CREATE,
            writes=writes,
            comments=plan_comments(job, link),
            notes=notes,
            attachments=plan_attachments(job, link),
        )
    return replace(plan_update(job, link), attachments=plan_attachments(job, link))


def not_passed_on(job: Job) -> str:
    """Why our issue is not passed on to this organization ("" when it is): it came from
    another partner, and this organization does not receive other partners' issues."""
    if job.came_from is None or job.organization.relay_partner_issues:
        return ""
    return (
        f"{job.issue_key} came from {job.came_from.name}; it is not passed on to "
        f"{job.organization.name} (the organization does not receive other partners' issues)"
    )


def plan_delete(job: Job, link: IssueLink) -> Plan:
    """The source issue is gone (its site answered 404): the direction's delete policy.

    A local issue we deleted ourselves because another partner deleted theirs only closes
    this organization's pair: one partner's delete never reaches another's copies.
    """
    if link.status in CLOSED_LINK_STATUSES:
        return Plan(NONE)
    if not side_id(link, job.target_side) and not (
        link.status == LinkStatus.CREATING and link.create_started_at
    ):
        return Plan(NONE)  # no copy (a create whose answer was lost may have made one)
    deleted_for = job.deleted_for
    if deleted_for is not None and deleted_for.pk != job.organization.pk:
        note = (
            f"{job.issue_key} was deleted by the sync because {deleted_for.name} deleted "
            "their copy; a partner's delete is not passed on to other organizations"
        )
        return Plan(DELETE, delete_policy=DeletePolicy.UNLINK, notes=(note,))
    if job.way == PUSH:
        return Plan(DELETE, delete_policy=job.organization.local_delete_policy)
    return Plan(DELETE, delete_policy=job.organization.remote_delete_policy)


def conflict_winner(
    job: Job, link: IssueLink, pair: FieldPair, target_fields: dict, seen: dict
) -> str:
    """Which side's value stands when both changed one field (the conflict policy).

    "The later wins" goes by each side's last change of that field (its changelog, read
    only now that there is a conflict, once per side), not by the issue's `updated`, which
    any unrelated edit moves; `updated` decides only when a changelog does not name it.
    """
    policy = job.organization.conflict_policy
    if policy in (ConflictPolicy.LOCAL_WINS, ConflictPolicy.REMOTE_WINS):
        return _later_side(job, None, None)
    src, tgt = job.source_side, job.target_side
    if src not in seen:
        seen[src] = _changelog(job.source, side_key(link, src) or job.issue_key)
    if tgt not in seen:
        seen[tgt] = _changelog(job.target, side_key(link, tgt))
    source_at = _last_change(seen[src], pair.source(job.way))
    target_at = _last_change(seen[tgt], pair.target(job.way))
    if source_at is None or target_at is None:
        source_at, target_at = job.issue["fields"].get("updated"), target_fields.get("updated")
    return _later_side(job, source_at, target_at)


def _changelog(client, key: str) -> list[dict]:
    try:
        return client.get_changelog(key)
    except JiraPermanentError:
        return []  # not readable here: the issues' `updated` decides


def _last_change(histories: list[dict], field_id: str) -> str | None:
    """When the newest history naming `field_id` was made (Jira's timestamp text)."""
    latest = None
    for history in histories:
        items = history.get("items") if isinstance(history, dict) else None
        if any(field_id_of(i) == field_id for i in items or () if isinstance(i, dict)):
            created = parse_datetime(str(history.get("created") or ""))
            if created and (latest is None or created > parse_datetime(latest)):
                latest = str(history.get("created"))
    return latest


def _later_side(job: Job, source_time: Any, target_time: Any) -> str:
    """The side the policy keeps: ours, the partner's, or the one changed later (a tie: ours)."""
    policy = job.organization.conflict_policy
    if policy == ConflictPolicy.LOCAL_WINS:
        return Side.LOCAL
    if policy == ConflictPolicy.REMOTE_WINS:
        return Side.REMOTE
    source_at = parse_datetime(str(source_time or "")) or None
    target_at = parse_datetime(str(target_time or "")) or None
    if source_at and target_at and source_at != target_at:
        return job.source_side if source_at > target_at else job.target_side
    return _tie(job)


def _tie(job: Job) -> str:
    """A tie: ours stands. Between two installs (Scenario B) both must pick the same side,
    so the inviter's value stands on both."""
    if job.organization.connection_type != ConnectionType.APP:
        return Side.LOCAL
    connection = getattr(job.organization, "connection", None)
    inviter = connection is None or connection.role == ConnectionRole.INVITER
    return Side.LOCAL if inviter else Side.REMOTE


def plan_update(job: Job, link: IssueLink) -> Plan:
    """Each mapped field compared with the agreed state; only real differences are written.

    Two-way, a field the target also changed since the agreed state is a conflict, settled
    by the organization's policy.
    """
    state_s = link.state.get(job.source_side, {})
    state_t = link.state.get(job.target_side, {})
    refused = link.state.get(REFUSED, {}).get(job.target_side, {})
    held: list[str] = []
    target_fields: dict | None = None
    target_key = ""
    changelogs: dict[str, list[dict]] = {}  # per side, read once a conflict needs them
    edits: list[FieldWrite] = []
    in_step: list[FieldWrite] = []
    conflicts: list[str] = []
    notes: list[str] = []
    status: FieldWrite | None = None
    for pair in job.pairs:
        s_name, t_name = pair.source(job.way), pair.target(job.way)
        value = job.source_value(s_name)
        if (
            s_name not in state_s
            and value in fields.EMPTY
            and fields.kind_of(s_name).absent_is_empty
        ):
            continue  # a pair made before the field synced, and nothing to carry
        # A partner install's change names only what changed there (see `peer.py`).
        unchanged = (
            job.values is None and s_name in state_s and fields.same(s_name, value, state_s[s_name])
        )
        if unchanged and not _mapped_since(job, link, pair):
            continue
        write = carried(job, pair)
        if write.unresolved is not None:
            # The new parent has no copy at the target: the copy keeps its own, and the
            # pair agrees on that (recorded; the next change of parent is carried again).
            notes.append(_parent_note(job, write, "the copy's parent is left as it is"))
            in_step.append(replace(write, target_value=state_t.get(t_name)))
            continue
        if write.leave:
            # No counterpart, and the policy leaves the target alone: the pair agrees on
            # the target's value as it is, so no later sync makes either side flip.
            if target_fields is None:
                target_fields = job.target.get_issue(side_key(link, job.target_side))["fields"]
            in_step.append(replace(write, target_value=fields.read(t_name, target_fields)))
            continue
        if t_name in state_t and fields.same(t_name, write.target_value, state_t[t_name]):
            # The target already holds it: only our record of the source moves.
            in_step.append(replace(write, target_value=state_t[t_name]))
            continue
        earlier = refused.get(t_name) or {}
        if earlier.get("fingerprint") == fields.fingerprint(t_name, write.target_value):
            held.append(
                f"{t_name}: {earlier.get('message') or 'refused'} (refused before; "
                "not sent again until its value changes)"
            )
            continue
        if job.two_way:
            if target_fields is None:
                target = job.target.get_issue(side_key(link, job.target_side))
                target_fields, target_key = target["fields"], str(target.get("key") or "")
            current = fields.read(t_name, target_fields)
            if fields.same(t_name, current, write.target_value):
                in_step.append(replace(write, target_value=current))
                continue
            if t_name in state_t and not fields.same(t_name, current, state_t[t_name]):
                winner = conflict_winner(job, link, pair, target_fields, changelogs)
                conflicts.append(f"{t_name}: {winner} side's value kept")
                if winner == job.target_side:
                    continue
        if not fields.kind_of(t_name).editable:
            status = write
        else:
            edits.append(write)
    unmatched = tuple(w for w in (*edits, *in_step) if w.unmatched)
    comments = plan_comments(job, link, conflicts) if job.comments_changed else ()
    return Plan(
        UPDATE,
        writes=tuple(edits),
        status=status,
        in_step=tuple(in_step),
        conflicts=tuple(conflicts),
        comments=comments,
        held=tuple(held),
        target_key=target_key,
        notes=(*notes, *_unmatched_notes(job, unmatched)),
    )


def _mapped_since(job: Job, link: IssueLink, pair: FieldPair) -> bool:
    """Was the source user this field's target was left without mapped since? (No call.)"""
    user_id = link.left_user(job.source_side, pair.source(job.way))
    if not user_id:
        return False
    return user_id in user_map_for(job.organization, job.way) or user_id in pair.value_map_for(
        job.way
    )


def plan_comments(
    job: Job, link: IssueLink, conflicts: list[str] | None = None
) -> tuple[CommentOp, ...]:
    """The comment copies to add, edit or delete so the target's match the source's.

    A source comment that is itself our copy (edited there) goes back to its original
    without the header the copy was given. Two-way, a comment whose copy was also edited
    since the last sync is a conflict (appended to `conflicts`), settled by the policy.
    """
    src, tgt = job.source_side, job.target_side
    comments = job.source.get_comments(side_key(link, src) or job.issue_key)
    links = {getattr(cl, f"{src}_comment_id"): cl for cl in link.comments.all()} if link.pk else {}
    ops: list[CommentOp] = []
    seen = set()
    shares_restricted = job.organization.copy_restricted_comments
    target_comments: dict[str, dict] | None = None
    for comment in comments:
        cid = str(comment["id"])
        if not shares_restricted and fields.comment_restricted(comment):
            continue  # stays home; a copy made while it was public is deleted below
        seen.add(cid)
        digest = fields.fingerprint("comment", comment.get("body"))
        existing = links.get(cid)
        # A pair whose copy went with a target issue that is gone: copied again.
        orphan = existing is not None and not getattr(existing, f"{tgt}_comment_id")
        if existing is not None and not orphan and getattr(existing, f"{src}_hash") == digest:
            continue
        if orphan and existing.origin == tgt:
            # Our copy of a comment written on the gone issue goes back as it is: its
            # header already names the author.
            body = fields.convert_rich_text(
                comment.get("body"), job.source.flavor, job.target.flavor
            )
        elif existing is not None and existing.origin != src:  # our copy, edited here
            body = comment_back(comment, job.source.flavor, job.target.flavor)
        else:
            body = comment_copy(comment, job.source.flavor, job.target.flavor)
        if existing is not None and not orphan and job.two_way and conflicts is not None:
            if target_comments is None:
                target_comments = {
                    str(c["id"]): c for c in job.target.get_comments(side_key(link, tgt))
                }
            other = target_comments.get(str(getattr(existing, f"{tgt}_comment_id")))
            if other is not None and getattr(existing, f"{tgt}_hash") != fields.fingerprint(
                "comment", other.get("body")
            ):
                winner = _later_side(job, comment.get("updated"), other.get("updated"))
                conflicts.append(f"comment {cid}: edited on both sides, {winner} side's text kept")
                if winner == tgt:
                    continue
        verb = "add" if existing is None or orphan else "edit"
        ops.append(CommentOp(verb, cid, body, digest, existing))
    for cid, existing in links.items():
        if cid in seen or not cid or not getattr(existing, f"{tgt}_comment_id"):
            continue
        ops.append(CommentOp("delete", cid, link=existing))
    return tuple(ops)
