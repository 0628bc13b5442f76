"""Attachments, both ways: each source attachment copied once to the target, each deleted
one's copy deleted, with `AttachmentLink` pairing them.

Cost on the hot path: the source issue is already read with its `attachment` field, and the
link's `state["attachments"]` holds, per side, a fingerprint of the attachment ids the table
knows there. An event whose source issue shows the same ids (every ordinary field edit)
costs no query and no call; only a difference reads the table and plans copies or deletes.

A copy moves through a temporary file: downloaded from the source piece by piece (its
SHA-256 computed on the way), uploaded to the target piece by piece (`JiraClient`), never
whole in memory. Before an upload, the row is committed as `uploading` with the time, and an
echo lock is taken on the file name: the target's webhook for our upload is an echo (0
calls), and a retry after a lost answer looks for the copy at the target before uploading
again, so the target never gets two.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jiraapi.errors import JiraNotFound, JiraPermanentError

from . import echo
from .jobs import Job, side_id, side_key
from .leases import issue_link_lease_renew
from .models import AttachmentLink, AttachmentStatus, IssueLink
from .sites import sync_account_ids

logger = logging.getLogger(__name__)

STATE_KEY = "attachments"  # link.state[STATE_KEY][side] = fingerprint of the ids known there
ECHO_FIELD = echo.ATTACHMENT
ADD, RETRY, DELETE, REFUSE, FORGET = "add", "retry", "delete", "refuse", "forget"
# A copy found at the target may have been added a little before our clock said we started.
_CLOCK_SLACK = timedelta(seconds=5)


@dataclass(frozen=True)
class AttachmentOp:
    """One thing to do for one source attachment (or one pair whose source is gone)."""

    verb: str  # add | retry | delete | refuse | forget
    filename: str
    source: dict | None = None  # the source's attachment (add, retry, refuse)
    link: AttachmentLink | None = None  # the existing pair (retry, delete, forget)
    reason: str = ""  # refuse

    @property
    def note(self) -> str:
        text = f"attachment {self.verb} {self.filename}"
        return f"{text} ({self.reason})" if self.reason else text


def ids_fingerprint(ids: Any) -> str:
    text = "\n".join(sorted(str(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


EMPTY = ids_fingerprint(())


def source_attachments(job: Job) -> list[dict]:
    found = ((job.issue or {}).get("fields") or {}).get("attachment")
    return [a for a in found or () if isinstance(a, dict) and a.get("id") is not None]


def attachments_changed(job: Job, link: IssueLink) -> bool:
    """Does the source issue's list differ from what the table knows there? (No query.)"""
    org = job.organization
    if not org.copy_attachments or org.is_app or job.values is not None or job.issue is None:
        return False  # off, or a partner install's side (Scenario B: not carried)
    ids = [a["id"] for a in source_attachments(job)]
    agreed = (link.state.get(STATE_KEY) or {}).get(job.source_side, EMPTY)
    return ids_fingerprint(ids) != agreed


def attachments_differ(
    *, organization: Any, side: str, issue_fields: dict, link: IssueLink
) -> bool:
    """For the catch-up: does an issue found by search (with its `attachment` field) show
    attachments the pair has not agreed on? In memory; a pair that never had any agrees on
    none."""
    if not organization.copy_attachments or organization.is_app:
        return False
    if "attachment" not in issue_fields:
        return False
    found = [a for a in issue_fields.get("attachment") or () if isinstance(a, dict)]
    ids = [a["id"] for a in found if a.get("id") is not None]
    agreed = (link.state.get(STATE_KEY) or {}).get(side, EMPTY)
    return ids_fingerprint(ids) != agreed


def refusal(job: Job, attachment: dict) -> str:
    """Why the organization's settings keep this file home ("" when they do not)."""
    org = job.organization
    name = str(attachment.get("filename") or "")
    for pattern in (p.strip() for p in (org.attachment_exclude or "").split(",")):
        if pattern and fnmatch.fnmatch(name.lower(), pattern.lower()):
            return f"excluded by the pattern {pattern!r}"
    size = int(attachment.get("size") or 0)
    if size > org.attachment_max_bytes:
        return f"{size} bytes, over the limit of {org.attachment_max_bytes}"
    return ""


def plan_attachments(job: Job, link: IssueLink) -> tuple[AttachmentOp, ...]:
    """The copies to make and delete so the target's attachments follow the source's.

    Reads the table only when the source's list differs from the agreed fingerprint.
    """
    if not attachments_changed(job, link):
        return ()
    src, tgt = job.source_side, job.target_side
    rows = list(link.attachments.all()) if link.pk else []
    by_source = {getattr(r, f"{src}_attachment_id"): r for r in rows}
    current = {str(a["id"]): a for a in source_attachments(job)}
    ops: list[AttachmentOp] = []
    for aid, attachment in current.items():
        name = str(attachment.get("filename") or aid)
        row = by_source.get(aid)
        if row is None:
            why = refusal(job, attachment)
            if why:
                ops.append(AttachmentOp(REFUSE, name, attachment, reason=why))
            else:
                ops.append(AttachmentOp(ADD, name, attachment))
        elif row.status == AttachmentStatus.UPLOADING and not getattr(row, f"{tgt}_attachment_id"):
            ops.append(AttachmentOp(RETRY, name, attachment, row))
    for aid, row in by_source.items():
        if not aid or aid in current:
            continue
        copy_id = getattr(row, f"{tgt}_attachment_id")
        verb = DELETE if copy_id and row.status != AttachmentStatus.REFUSED else FORGET
        ops.append(AttachmentOp(verb, row.filename, link=row))
    return tuple(ops)


def apply_attachments(job: Job, link: IssueLink, ops: tuple[AttachmentOp, ...]) -> list[str]:
    """Carry the ops out against the target; returns notes for the sync's record (refusals).

    The agreed fingerprints are written once the table is up to date (even with no op: the
    source's list then matches the table and the next event costs nothing)."""
    if not attachments_changed(job, link) and not ops:
        return []
    notes: list[str] = []
    for op in ops:
        if op.verb == REFUSE:
            _refuse(job, link, op)
            notes.append(f"attachment {op.filename} not copied: {op.reason}")
        elif op.verb in (ADD, RETRY):
            note = _copy(job, link, op)
            if note:
                notes.append(note)
        elif op.verb == DELETE:
            _delete_copy(job, link, op.link)
        elif op.verb == FORGET:
            op.link.delete()
    _agree(link)
    return notes


def _agree(link: IssueLink) -> None:
    rows = list(link.attachments.exclude(status=AttachmentStatus.DELETING))
    link.state[STATE_KEY] = {
        side: ids_fingerprint(
            getattr(r, f"{side}_attachment_id") for r in rows if getattr(r, f"{side}_attachment_id")
        )
        for side in ("local", "remote")
    }
    link.save(update_fields=["state", "updated_at"])


def _refuse(job: Job, link: IssueLink, op: AttachmentOp) -> None:
    src = job.source_side
    AttachmentLink.objects.create(
        issue_link=link,
        origin=src,
        filename=op.filename[:255],
        size=int(op.source.get("size") or 0),
        status=AttachmentStatus.REFUSED,
        reason=op.reason,
        **{f"{src}_attachment_id": str(op.source["id"])},
    )
    logger.info(
        "sync.attachment_refused",
        extra={
            "organization": job.organization.public_id,
            "issue": job.issue_key,
            "attachment": op.filename,
            "reason": op.reason,
        },
    )


def _copy(job: Job, link: IssueLink, op: AttachmentOp) -> str:
    """Download the source file to a temporary file, then upload it to the target (or adopt
    the copy an earlier attempt made whose answer was lost). Returns a note for the record
    when the file could not be copied ("" when it was)."""
    src, tgt = job.source_side, job.target_side
    row = op.link
    if row is not None:
        found = _adopt(job, link, row)
        if found is not None:
            _copied(row, tgt, found, row.size, row.sha256)
            return ""
    else:
        row = AttachmentLink(
            issue_link=link,
            origin=src,
            filename=op.filename[:255],
            **{f"{src}_attachment_id": str(op.source["id"])},
        )
    with tempfile.TemporaryFile(prefix="jira-sync-attachment-") as spool:
        try:
            size, digest = job.source.download_attachment(op.source, spool)
        except JiraNotFound:  # deleted at the source meanwhile: its own event follows
            if row.pk:
                row.delete()
            return f"attachment {op.filename}: gone from the source before it was copied"
        spool.seek(0)
        row.size, row.sha256 = size, digest
        row.status = AttachmentStatus.UPLOADING
        row.upload_started_at = timezone.now()
        row.save()  # committed before the upload: a lost answer is looked for next time
        if link.lease_owner:
            issue_link_lease_renew(link)
        sync_account_ids(job.target)  # learnt before our write there (see engine._expect)
        lock = {
            "organization": job.organization,
            "side": tgt,
            "issue_id": side_id(link, tgt),
        }
        echo.echo_expect(**lock, values={ECHO_FIELD: op.filename})
        try:
            added = job.target.add_attachment(side_key(link, tgt), op.filename, spool, size)
        except JiraPermanentError as exc:
            echo.echo_discard(**lock, field=ECHO_FIELD, value=op.filename)
            if isinstance(exc, JiraNotFound) or getattr(exc, "status", None) == 401:
                raise  # the target issue is gone, or our credentials are refused
            # Refused by the target (its own size limit, no permission to attach): recorded
            # once, not tried again with every event.
            said = "; ".join([*exc.messages, *exc.errors.values()]) or str(exc)
            row.status, row.reason = AttachmentStatus.REFUSED, f"the target refused it: {said}"
            row.save(update_fields=["status", "reason", "updated_at"])
            return f"attachment {op.filename} not copied: {row.reason}"
    copy = (added or [{}])[0]
    _copied(row, tgt, copy, size, digest)
    logger.info(
        "sync.attachment_copied",
        extra={
            "organization": job.organization.public_id,
            "issue": job.issue_key,
            "attachment": op.filename,
            "size": size,
        },
    )
    return ""


def _copied(row: AttachmentLink, tgt: str, copy: dict, size: int, digest: str) -> None:
    setattr(row, f"{tgt}_attachment_id", str(copy.get("id") or "") or None)
    row.size, row.sha256 = size, digest
    row.status = AttachmentStatus.COPIED
    row.reason = ""
    row.save()


def _adopt(job: Job, link: IssueLink, row: AttachmentLink) -> dict | None:
    """The copy an earlier upload made whose answer never came: at the target, the same
    name and size, added by the sync account since that upload started, and not paired."""
    tgt = job.target_side
    if row.upload_started_at is None:
        return None
    target = job.target.get_issue(side_key(link, tgt), fields=["attachment"])
    taken = set(
        AttachmentLink.objects.filter(issue_link=link)
        .exclude(**{f"{tgt}_attachment_id": None})
        .values_list(f"{tgt}_attachment_id", flat=True)
    )
    ours = sync_account_ids(job.target)
    since = row.upload_started_at - _CLOCK_SLACK
    for candidate in (target.get("fields") or {}).get("attachment") or ():
        author = candidate.get("author") or {}
        created = parse_datetime(str(candidate.get("created") or ""))
        if (
            str(candidate.get("id")) not in taken
            and _form_name(str(candidate.get("filename"))) == _form_name(row.filename)
            and int(candidate.get("size") or -1) == row.size
            and (
                not ours or {author.get("accountId"), author.get("name"), author.get("key")} & ours
            )
            and (created is None or created >= since)
        ):
            return candidate
    return None


def _form_name(name: str) -> str:
    """A file name as an upload form carries it (a double quote becomes %22, as browsers and
    requests send it), so a copy is recognised whichever way the site stored it."""
    return name.replace('"', "%22")


def _delete_copy(job: Job, link: IssueLink, row: AttachmentLink) -> None:
    """The source attachment is gone: its copy goes too. The row is marked first, so the
    target's webhook for this delete is known as ours."""
    tgt = job.target_side
    row.status = AttachmentStatus.DELETING
    row.save(update_fields=["status", "updated_at"])
    with contextlib.suppress(JiraNotFound):  # already gone there
        job.target.delete_attachment(getattr(row, f"{tgt}_attachment_id"))
    row.delete()
