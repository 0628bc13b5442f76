"""Scenario B's change channel, the engine's side: two installs of this service, each writing
only into its own Jira, exchange changes as signed messages (see organizations/relay.py for
the outbox and relay, webhooks for the inbox).

Sending (`peer_publish`): our Jira's webhook went through the same pre-check as always (echo
locks, actor); the fields we share whose value differs from what the partner last confirmed
seeing (`state["local"]`, moved by its acks) go out, in canonical form, with the whole list
of shared comments when comments changed. A field stays in every later message until the
partner confirms it, so a message lost, late or overtaken costs nothing: the newer one
carries it. The partner's copy is unknown until its ack names it; until then the message
carries every shared field (the partner creates the copy once: its link is by our id).

Receiving (`peer_apply`): a change is applied to our Jira by the engine, as a partner's Jira
change is in Scenario A (`PULL`), with the message in the place of the partner's issue: the
agreed state, conflicts by each side's last change, echo locks before every write (so the
webhook our write causes is ours, and nothing goes back). Then an ack goes back in the same
transaction: our issue's id and key, what we received, and every comment pairing.

Messages are numbered per issue pair (`seq`); a receiver skips one older than what it has
applied (`state["peer"]`), and an older ack never moves the state back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from jiraapi.client import counting_calls
from organizations.models import Connection, Organization, ProjectMapping
from organizations.relay import outbox_add

from . import engine, fields
from .jobs import Job, PeerSource
from .leases import issue_link_get_or_create, issue_link_lease
from .mapping import PULL, field_pairs
from .models import CLOSED_LINK_STATUSES, CommentLink, IssueLink, LinkStatus, Side
from .plan import CREATE, DELETE, NONE, SKIPPED, UPDATE, not_passed_on
from .sites import local_client

logger = logging.getLogger(__name__)

PEER = "peer"  # the key of IssueLink.state that holds the pair's message numbers
FLAVORS = ("cloud", "datacenter")
MAX_ID = 32  # issue and comment ids, as the links keep them


class BadMessage(ValueError):
    """A change or ack whose shape is wrong (refused with 422 before it is stored)."""


def _text(value: Any, what: str, *, required: bool = True, limit: int = MAX_ID) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise BadMessage(f"'{what}' must be a non-empty string")
    text = str(value)
    if len(text) > limit or "\x00" in text:
        raise BadMessage(f"'{what}' is too long or holds NUL")
    return text


def peer_message_check(payload: dict[str, Any]) -> dict[str, str]:
    """The issue a change or ack is about ({"id", "key"}); BadMessage when its shape is wrong."""
    issue = payload.get("issue")
    if not isinstance(issue, dict):
        raise BadMessage("'issue' must be an object")
    checked = {
        "id": _text(issue.get("id"), "issue.id"),
        "key": _text(issue.get("key"), "issue.key", limit=64),
    }
    _text(payload.get("yourIssueId"), "yourIssueId", required=False)
    if payload["type"] == "change":
        seq = payload.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise BadMessage("'seq' must be a positive integer")
        if payload.get("flavor") not in FLAVORS:
            raise BadMessage(f"'flavor' must be one of {', '.join(FLAVORS)}")
        _text(issue.get("project"), "issue.project", limit=64)
        if not payload.get("deleted") and not isinstance(payload.get("fields"), dict):
            raise BadMessage("'fields' must be an object")
        comments = payload.get("comments")
        if comments is not None and not (
            isinstance(comments, list)
            and all(isinstance(c, dict) and isinstance(c.get("id"), str | int) for c in comments)
        ):
            raise BadMessage("'comments' must be a list of objects with an 'id'")
    else:
        seq = payload.get("ackSeq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise BadMessage("'ackSeq' must be a positive integer")
        if not isinstance(payload.get("received") or {}, dict):
            raise BadMessage("'received' must be an object")
        if not isinstance(payload.get("comments") or [], list):
            raise BadMessage("'comments' must be a list")
    return checked


def _peer_state(link: IssueLink) -> dict[str, int]:
    return link.state.setdefault(PEER, {})


def _live_connection(organization: Organization) -> Connection | None:
    connection = Connection.objects.filter(organization=organization).first()
    return connection if connection is not None and connection.is_active else None


# --- sending ------------------------------------------------------------------------------------


def peer_publish(
    job: Job, *, delivery_id: int | None = None, started: float | None = None, notes=()
) -> engine.Change:
    """Send our issue's change to the partner's install (a message in the outbox)."""
    connection = _live_connection(job.organization)
    if connection is None:
        change = engine.Change(
            action=SKIPPED,
            notes=["not sent: the connection to the partner's install is not active"],
        )
        engine.record(job, None, change, delivery_id=delivery_id, started=started)
        return change
    link = issue_link_get_or_create(
        organization=job.organization,
        side=Side.LOCAL,
        issue_id=job.issue_id,
        issue_key=job.issue_key,
    )
    with counting_calls() as calls, issue_link_lease(link) as link:
        change = _publish(job, link, connection)
        change.notes[:0] = notes
        change.calls = calls.count
        engine.record(job, link, change, delivery_id=delivery_id, started=started)
    return change


def _accepted(offer: dict, kind: str) -> set[str] | None:
    """The projects or fields an accepted offer names; None: not limited (a connection made
    before offers were kept)."""
    return set(offer[kind]) if isinstance(offer.get(kind), list) else None


@dataclass
class Outgoing:
    """What a change of our issue sends (`payload` None: nothing), and its record."""

    change: engine.Change
    payload: dict[str, Any] | None = None
    with_comments: bool = False
    close: bool = False  # the pair is only closed here


def outgoing(job: Job, link: IssueLink, connection: Connection) -> Outgoing:
    """The message our issue's change calls for, computed without writing anything."""
    if link.status in CLOSED_LINK_STATUSES:
        return Outgoing(engine.Change(action=NONE))
    held_back = not_passed_on(job)
    if held_back:
        return Outgoing(engine.Change(action=SKIPPED, notes=[held_back]))
    projects = _accepted(connection.offer_out_accepted, "projects")
    if projects is not None and job.project_mapping.local_project_key not in projects:
        note = (
            f"not sent: project {job.project_mapping.local_project_key} is not in what the "
            "partner accepted from us"
        )
        return Outgoing(engine.Change(action=SKIPPED, notes=[note]))
    peer = link.state.get(PEER) or {}
    payload: dict[str, Any] = {
        "issue": {
            "id": job.issue_id,
            "key": job.issue_key,
            "project": job.project_mapping.local_project_key,
            "url": f"{job.source.base_url}/browse/{job.issue_key}",
        },
        "yourIssueId": link.remote_issue_id,
        "flavor": job.source.flavor,
        "site": job.source.base_url,
    }
    if job.issue is None:
        if job.deleted_for is not None or not peer.get("out"):
            # Deleted by us for a partner (never passed on), or never sent: only closed here.
            note = "the pair is closed here"
            return Outgoing(engine.Change(action=engine.UNLINK, notes=[note]), close=True)
        payload["deleted"] = True
        return Outgoing(engine.Change(action=DELETE, fields=["deleted"]), payload)
    full = not link.remote_issue_id
    agreed = link.side_state(Side.LOCAL)
    values = {}
    allowed = _accepted(connection.offer_out_accepted, "fields")
    for pair in job.pairs:
        if allowed is not None and pair.local not in allowed:
            continue  # not in what the partner accepted from us (yet)
        value = fields.read(pair.local, job.issue["fields"])
        seen = pair.local in agreed and fields.same(pair.local, value, agreed[pair.local])
        if full or not seen:
            values[pair.local] = value
    pending_comments = peer.get("commentsSeq", 0) > peer.get("acked", 0)
    comments = (
        _shared_comments(job)
        if (job.comments_changed or full or pending_comments)
        and (allowed is None or "comment" in allowed)
        else None
    )
    if not values and comments is None:
        return Outgoing(engine.Change(action=NONE))
    payload.update(fields=values, comments=comments, changedAt=job.issue["fields"].get("updated"))
    change = engine.Change(
        action=CREATE if full else UPDATE,
        fields=sorted(values),
        comments=["list"] if comments is not None else [],
    )
    return Outgoing(change, payload, with_comments=comments is not None)


def _publish(job: Job, link: IssueLink, connection: Connection) -> engine.Change:
    out = outgoing(job, link, connection)
    if job.issue_key and link.local_issue_key != job.issue_key:
        link.local_issue_key = job.issue_key
    if out.close:
        link.status = LinkStatus.DELETED
        link.save(update_fields=["status", "local_issue_key", "updated_at"])
    if out.payload is None:
        return out.change
    peer = _peer_state(link)
    seq = peer.get("out", 0) + 1
    peer["out"] = seq
    if out.with_comments:
        peer["commentsSeq"] = seq
    with transaction.atomic():
        outbox_add(
            connection=connection,
            kind="change",
            payload={**out.payload, "seq": seq},
            pair=job.issue_id,
            seq=seq,
        )
        link.save(update_fields=["state", "local_issue_key", "updated_at"])
    out.change.notes.append(f"sent to the partner's install (message {seq} of {job.issue_key})")
    return out.change


def peer_preview(job: Job) -> engine.Change:
    """What `peer_publish` would send for our issue, without sending or saving anything
    (a dry run)."""
    connection = _live_connection(job.organization)
    if connection is None:
        note = "would not send: the connection to the partner's install is not active"
        return engine.Change(action=SKIPPED, notes=[note])
    link = IssueLink.objects.filter(
        organization=job.organization, local_issue_id=job.issue_id
    ).first() or IssueLink(organization=job.organization, local_issue_id=job.issue_id)
    out = outgoing(job, link, connection)
    if out.payload is not None:
        out.change.notes.append("would be sent to the partner's install")
    return out.change


def _shared_comments(job: Job) -> list[dict]:
    """Our issue's comments as the partner may see them: restricted ones stay home unless
    the organization shares them; only the author's display name goes with each."""
    shares_restricted = job.organization.copy_restricted_comments
    out = []
    for comment in job.source.get_comments(job.issue_key):
        if not shares_restricted and fields.comment_restricted(comment):
            continue
        out.append(
            {
                "id": str(comment["id"]),
                "body": comment.get("body"),
                "author": {"displayName": (comment.get("author") or {}).get("displayName") or ""},
                "created": comment.get("created"),
                "updated": comment.get("updated"),
            }
        )
    return out


# --- receiving ----------------------------------------------------------------------------------


def _find_link(organization: Organization, issue_id: str, issue_key: str, yours: str) -> None:
    """A message naming our issue (`yourIssueId`) for a link that does not know the
    partner's copy yet (its ack is still on the way): the link learns it now."""
    if (
        not yours
        or IssueLink.objects.filter(organization=organization, remote_issue_id=issue_id).exists()
    ):
        return
    IssueLink.objects.filter(
        organization=organization, local_issue_id=yours, remote_issue_id__isnull=True
    ).update(remote_issue_id=issue_id, remote_issue_key=issue_key, status=LinkStatus.LINKED)


def peer_apply(
    *,
    organization: Organization,
    payload: dict[str, Any],
    delivery_id: int | None = None,
    started: float | None = None,
) -> tuple[str, str]:
    """Apply the partner install's change to our Jira; ("done"|"ignored", reason)."""
    issue = peer_message_check(payload)
    seq = payload["seq"]
    connection = _live_connection(organization)
    if connection is None:
        return "ignored", "the connection to the partner's install is not active"
    if not organization.enabled or not organization.is_bidirectional:
        _ack_seen(organization, connection, payload, issue)
        return "ignored", (
            "this organization only sends (sync direction push): the partner's change is "
            "acknowledged, not applied"
        )
    project = str(payload["issue"]["project"])
    mapping = ProjectMapping.objects.filter(
        organization=organization, remote_project_key=project
    ).first()
    if mapping is None:
        _ack_seen(organization, connection, payload, issue)
        return "ignored", f"partner project {project!r} is not mapped"
    accepted = connection.offer_in_accepted
    projects = _accepted(accepted, "projects")
    if projects is not None and project not in projects:
        _ack_seen(organization, connection, payload, issue)
        return "ignored", f"partner project {project!r} is not in what we accepted from them"
    _find_link(organization, issue["id"], issue["key"], str(payload.get("yourIssueId") or ""))
    values = payload.get("fields") or {}
    comments = payload.get("comments")
    allowed = _accepted(accepted, "fields")
    if allowed is not None:  # only what we accepted from them crosses into our Jira
        values = {name: value for name, value in values.items() if name in allowed}
        if "comment" not in allowed:
            comments = None
    pairs = tuple(p for p in field_pairs(organization, PULL) if p.remote in values)
    job = Job(
        organization=organization,
        project_mapping=mapping,
        way=PULL,
        source=PeerSource(
            flavor=payload["flavor"],
            base_url=str(payload.get("site") or "")[:500],
            comments=comments or [],
            changed_at=payload.get("changedAt"),
            changed=tuple(values),
        ),
        target=local_client(),
        issue_id=issue["id"],
        issue_key=issue["key"],
        issue=None
        if payload.get("deleted")
        else {
            "id": issue["id"],
            "key": issue["key"],
            "fields": {
                "summary": values.get("summary") or "",
                "updated": payload.get("changedAt"),
            },
        },
        comments_changed=comments is not None,
        pairs=pairs,
        values=values,
    )
    link = issue_link_get_or_create(
        organization=organization, side=Side.REMOTE, issue_id=issue["id"], issue_key=issue["key"]
    )
    with counting_calls() as calls, issue_link_lease(link) as link:
        peer = _peer_state(link)
        if seq <= peer.get("in", 0):
            return "ignored", (
                f"message {seq} of {issue['key']} is older than the one applied "
                f"({peer.get('in')}); a newer message carried its changes"
            )
        change = engine.plan_and_apply(job, link, delivery_id=delivery_id, started=started)
        # (A pair reopened to recreate a gone copy starts its state afresh: asked again.)
        _peer_state(link)["in"] = max(seq, int(peer.get("in", 0)))
        with transaction.atomic():
            link.save(update_fields=["state", "updated_at"])
            outbox_add(
                connection=connection,
                kind="ack",
                payload=_ack_payload(link, payload),
                pair=link.local_issue_id or "",
            )
        change.calls = calls.count
        link.last_error = fields.without_nul("; ".join(change.errors + change.held))
        link.save(update_fields=["last_error", "updated_at"])
        engine.record(job, link, change, delivery_id=delivery_id, started=started)
    return "done", ""


def _ack_payload(link: IssueLink, payload: dict[str, Any]) -> dict[str, Any]:
    pairings = [
        {
            "yourId": cl.remote_comment_id,
            "yourHash": cl.remote_hash,
            "id": cl.local_comment_id,
            "hash": cl.local_hash,
        }
        for cl in link.comments.all()
        if cl.remote_comment_id and cl.local_comment_id
    ]
    ack = {
        "issue": {"id": link.local_issue_id, "key": link.local_issue_key},
        "yourIssueId": payload["issue"]["id"],
        "ackSeq": payload["seq"],
        "received": payload.get("fields") or {},
        "comments": pairings,
    }
    if not link.local_issue_id:  # no copy here (not created: the mapping creates none)
        ack.update(issue={"id": "-", "key": "-"}, applied=False)
    return ack


def _ack_seen(
    organization: Organization, connection: Connection, payload: dict, issue: dict
) -> None:
    """Acknowledge a change we do not apply, so the partner stops sending it again."""
    outbox_add(
        connection=connection,
        kind="ack",
        payload={
            "issue": {"id": "-", "key": "-"},
            "yourIssueId": issue["id"],
            "ackSeq": payload["seq"],
            "received": payload.get("fields") or {},
            "comments": [],
            "applied": False,
        },
    )


def peer_ack_apply(*, organization: Organization, payload: dict[str, Any]) -> tuple[str, str]:
    """The partner's ack of our message: its copy's id and key, what it received (our agreed
    state moves to it), and the comment pairings. No Jira call."""
    issue = peer_message_check(payload)
    ours = str(payload.get("yourIssueId") or "")
    link = IssueLink.objects.filter(organization=organization, local_issue_id=ours).first()
    if link is None:
        return "ignored", f"the ack names issue {ours!r}, which we never sent"
    with issue_link_lease(link) as link:
        peer = _peer_state(link)
        if payload["ackSeq"] <= peer.get("acked", 0):
            return "ignored", "an older ack (a newer one was applied)"
        peer["acked"] = payload["ackSeq"]
        applied = payload.get("applied", True) is not False
        if applied and not link.remote_issue_id:
            taken = IssueLink.objects.filter(
                organization=organization, remote_issue_id=issue["id"]
            ).exclude(pk=link.pk)
            if not taken.exists():
                link.remote_issue_id, link.remote_issue_key = issue["id"], issue["key"]
        if applied and link.remote_issue_id == issue["id"]:
            link.remote_issue_key = issue["key"]
            if link.status == LinkStatus.NEW:
                link.status = LinkStatus.LINKED
        shared = {p.local for p in field_pairs(organization, "push")}
        agreed = link.side_state(Side.LOCAL)
        for name, value in (payload.get("received") or {}).items():
            if name in shared:
                agreed[name] = value
        with transaction.atomic():
            link.save()
            if applied:
                _learn_comments(link, payload.get("comments") or [])
    return "done", ""


def _learn_comments(link: IssueLink, pairings: list) -> None:
    known = {cl.local_comment_id: cl for cl in link.comments.all() if cl.local_comment_id}
    for item in pairings:
        if not isinstance(item, dict):
            continue
        ours, theirs = str(item.get("yourId") or ""), str(item.get("id") or "")
        if not ours or not theirs or len(ours) > MAX_ID or len(theirs) > MAX_ID:
            continue
        cl = known.get(ours)
        if cl is None:  # our own comment, copied there
            CommentLink.objects.create(
                issue_link=link,
                origin=Side.LOCAL,
                local_comment_id=ours,
                remote_comment_id=theirs,
                local_hash=str(item.get("yourHash") or "")[:64],
                remote_hash=str(item.get("hash") or "")[:64],
            )
        elif cl.remote_comment_id in (None, "", theirs):
            cl.remote_comment_id = theirs
            cl.local_hash = str(item.get("yourHash") or "")[:64]
            cl.remote_hash = str(item.get("hash") or "")[:64]
            cl.save()


__all__ = [
    "BadMessage",
    "peer_ack_apply",
    "peer_apply",
    "peer_message_check",
    "peer_preview",
    "peer_publish",
]
