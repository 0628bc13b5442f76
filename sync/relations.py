"""Issue links between synced issues (Jira's `issuelinks`), mirrored between their copies.

A link between two issues that are both synced with the same organization is copied
between their two copies, its type matched by name (`Organization.link_type_map` renames);
removing it removes the copy. Links to issues that are not synced are left alone on both
sides. Each mirrored link is a `RelationLink` row (its id on each side).

Cost: the source issue is read once with every field, `issuelinks` among them; the link ids
it holds are fingerprinted in the pair's `state` (already loaded), so an ordinary field edit
makes no query and no call here. Only when the ids differ from the agreed ones are the
pair's relations read; when a link is to be copied or removed, the issue's links are read
again (one call: the link's other end is another pair, synced under its own lease, which
may have changed the mirrored links since the first read) and the differences written.

Echoes: Jira answers a new link with 201 and no body, so before the POST an echo lock
(type and ends) is committed; the new link's id is then read from the copy's `issuelinks`
and kept in the row, and the lock dropped. The `issuelink_created` our POST causes finds
the row or the lock: 0 calls. Before deleting a copy its row goes, so the
`issuelink_deleted` it causes finds no mirrored link: 0 calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from jiraapi.errors import JiraNotFound
from jiraapi.events import LinkRef
from organizations.models import Organization

from .echo import echo_ttl
from .jobs import Job, PeerSource
from .mapping import PUSH
from .models import EchoLock, IssueLink, LinkStatus, RelationLink, RelationStatus

logger = logging.getLogger(__name__)

# The key of `IssueLink.state` holding, per side, the fingerprint of the issue's link ids.
LINKS = "links"
# EchoLock.field of a link we are about to create (no Jira field id has parentheses).
LINK_LOCK = "(issue link)"


@dataclass(frozen=True)
class Rel:
    """One entry of an issue's `issuelinks`, seen from that issue."""

    id: str
    type_name: str
    is_source: bool  # this issue shows the type's outward description ("blocks")
    other_id: str
    other_key: str


def rels_of(issue_fields: dict) -> list[Rel]:
    out = []
    for raw in issue_fields.get("issuelinks") or []:
        if not isinstance(raw, dict):
            continue
        other = raw.get("outwardIssue") or raw.get("inwardIssue")
        if not isinstance(other, dict) or raw.get("id") is None:
            continue
        out.append(
            Rel(
                id=str(raw["id"]),
                type_name=str((raw.get("type") or {}).get("name") or ""),
                is_source="outwardIssue" in raw,
                other_id=str(other.get("id") or ""),
                other_key=str(other.get("key") or ""),
            )
        )
    return out


def links_fingerprint(rels: list[Rel]) -> str:
    return ",".join(sorted(r.id for r in rels))


def lock_fingerprint(type_name: str, source_id: str, dest_id: str) -> str:
    return hashlib.sha256(f"{type_name}|{source_id}|{dest_id}".encode()).hexdigest()


def mapped_type(organization: Organization, name: str, way: str) -> str:
    """The link type's name at the target (the map names local -> partner)."""
    table = organization.link_type_map or {}
    if way != PUSH:
        table = {v: k for k, v in table.items()}
    return str(table.get(name, name))


def relations_due(job: Job, link: IssueLink) -> bool:
    """Whether the source issue's links differ from the agreed ones (in memory)."""
    if link.status != LinkStatus.LINKED or job.issue is None:
        return False
    if isinstance(job.source, PeerSource) or isinstance(job.target, PeerSource):
        return False  # Scenario B: the partner's install mirrors links itself (not yet)
    issue_fields = (job.issue or {}).get("fields") or {}
    if "issuelinks" not in issue_fields:
        return False  # read without its links (some fields only): nothing to compare
    if job.links_changed:
        return True
    rels = rels_of(issue_fields)
    return (link.state.get(LINKS) or {}).get(job.source_side) != links_fingerprint(rels)


def links_differ(*, side: str, issue_fields: dict, link: IssueLink) -> bool:
    """For the catch-up: does an issue found by search (with its `issuelinks` field) show
    links other than the ones the pair last agreed on? In memory; a pair that never had a
    link agrees on none."""
    if "issuelinks" not in issue_fields:
        return False
    agreed = (link.state.get(LINKS) or {}).get(side) or ""
    return agreed != links_fingerprint(rels_of(issue_fields))


@dataclass
class _Differences:
    """What differs between one issue's links (on `side`) and the mirrored ones."""

    rels: list[Rel]
    gone: list[RelationLink]  # mirrored links no longer on the issue
    new: list[tuple[Rel, IssueLink, IssueLink]]  # (link, source pair, destination pair)


def _differences(
    organization: Organization, side: str, link: IssueLink, rels: list[Rel]
) -> _Differences:
    """Reads the pair's relation rows (and, for links not mirrored, the other ends' pairs)."""
    current = {r.id for r in rels}
    rows = list(
        RelationLink.objects.filter(organization=organization)
        .filter(Q(outward_pair=link) | Q(inward_pair=link))
        .select_related("outward_pair", "inward_pair")
    )
    mirrored = {getattr(r, f"{side}_link_id") for r in rows} - {None, ""}
    gone = [
        r
        for r in rows
        if getattr(r, f"{side}_link_id") and getattr(r, f"{side}_link_id") not in current
    ]
    candidates = [r for r in rels if r.id not in mirrored]
    pairs = (
        _synced_pairs(organization, side, {r.other_id for r in candidates}) if candidates else {}
    )
    new = []
    for rel in candidates:
        other = pairs.get(rel.other_id)
        if other is None:
            continue  # the other end is not synced with this organization: left alone
        source_pair, dest_pair = (link, other) if rel.is_source else (other, link)
        if not _in_flight(organization, side, rel, source_pair, dest_pair):
            new.append((rel, source_pair, dest_pair))
    return _Differences(rels=rels, gone=gone, new=new)


def relation_change_pending(
    *, organization: Organization, side: str, issue_id: str, issue_fields
) -> bool:
    """Whether an event's issue (its `issuelinks`, as a Cloud `Link` changelog event carries
    them) holds a link change to mirror: a new link between synced issues that is not ours,
    or a mirrored link gone. Database only, no Jira call (our own copies say no)."""
    if organization.is_app or "issuelinks" not in issue_fields:
        return False
    link = IssueLink.objects.filter(
        organization=organization, status=LinkStatus.LINKED, **{f"{side}_issue_id": issue_id}
    ).first()
    if link is None:
        return False
    found = _differences(organization, side, link, rels_of(dict(issue_fields)))
    return bool(found.gone or found.new)


def relations_sync(job: Job, link: IssueLink, change: Any, *, dry_run: bool = False) -> None:
    """Mirror the source issue's links between synced issues onto the target (under the
    pair's lease); `change` (an engine `Change`) records what was done (or would be)."""
    src, tgt = job.source_side, job.target_side
    found = _differences(job.organization, src, link, rels_of(job.issue["fields"]))
    if (found.gone or found.new) and not dry_run:
        # Acted on only as the source shows its links now: the other end of a link is
        # another pair, synced under its own lease, which may have mirrored or removed it
        # since this read (which then shows a removed link as new, or a new one as gone).
        try:
            now = job.source.get_issue(job.issue_id, fields=["issuelinks"])
        except JiraNotFound:
            return  # deleted meanwhile: its delete event's sync takes the pair
        fields = now.get("fields") or {}
        if "issuelinks" not in fields:
            return  # answered without its links: nothing to compare, nothing to remove
        found = _differences(job.organization, src, link, rels_of(fields))
    for row in found.gone:
        _remove(job, row, change, dry_run=dry_run)
    types: set[str] | None = None
    for rel, source_pair, dest_pair in found.new:
        type_name = mapped_type(job.organization, rel.type_name, job.way)
        if types is None:
            types = {str(t.get("name")) for t in job.target.issue_link_types()}
        note = f"link {rel.type_name} {rel.other_key}"
        missing = type_name not in types
        if dry_run:
            if missing:
                change.errors.append(f"{note}: no link type {type_name!r} at the other site")
            else:
                change.fields.append(note)
            continue
        status = RelationStatus.NO_TYPE if missing else RelationStatus.LINKED
        row = _claim(job, rel, source_pair, dest_pair, status=status, **{f"{tgt}_type": type_name})
        if row is None:
            continue  # the other end's sync is mirroring it
        if missing:
            change.errors.append(f"{note}: no link type {type_name!r} at the other site")
            continue
        change.fields.append(note)
        _create(job, rel, type_name, row)
    if not dry_run:
        agreed = link.state.setdefault(LINKS, {})
        agreed[src] = links_fingerprint(found.rels)
        if found.gone or found.new:
            agreed.pop(tgt, None)  # our writes changed the copy's links: compare it next time
        link.save(update_fields=["state", "updated_at"])


def _synced_pairs(
    organization: Organization, side: str, issue_ids: set[str]
) -> dict[str, IssueLink]:
    """The pairs of `side`'s issues among `issue_ids` that are linked with a copy."""
    other = "remote" if side == "local" else "local"
    found = (
        IssueLink.objects.filter(
            organization=organization,
            status=LinkStatus.LINKED,
            **{f"{side}_issue_id__in": issue_ids},
        )
        .exclude(**{f"{other}_issue_id": None})
        .exclude(**{f"{other}_issue_id": ""})
    )
    return {getattr(p, f"{side}_issue_id"): p for p in found}


def _in_flight(
    organization: Organization, side: str, rel: Rel, source_pair: IssueLink, dest_pair: IssueLink
) -> bool:
    """A link on `side` that is our own copy whose row does not know it yet."""
    source_id = str(getattr(source_pair, f"{side}_issue_id"))
    return EchoLock.objects.filter(
        organization=organization,
        side=side,
        issue_id=source_id,
        field=LINK_LOCK,
        fingerprint=lock_fingerprint(
            rel.type_name, source_id, str(getattr(dest_pair, f"{side}_issue_id"))
        ),
        expires_at__gt=timezone.now(),
    ).exists()


def _claim(
    job: Job, rel: Rel, source_pair: IssueLink, dest_pair: IssueLink, **values
) -> RelationLink | None:
    """The row of a source link, written before anything is sent; None when another sync
    (the other end's pair, at the same moment) has claimed it already."""
    src = job.source_side
    try:
        with transaction.atomic():
            return RelationLink.objects.create(
                organization=job.organization,
                outward_pair=source_pair,
                inward_pair=dest_pair,
                origin=src,
                **{f"{src}_link_id": rel.id, f"{src}_type": rel.type_name},
                **values,
            )
    except IntegrityError:
        return None


def _create(job: Job, rel: Rel, type_name: str, row: RelationLink) -> None:
    """Create the copy of `rel` between the two copies; `row` (claimed) learns its id."""
    tgt = job.target_side
    source_pair, dest_pair = row.outward_pair, row.inward_pair
    source_id = str(getattr(source_pair, f"{tgt}_issue_id"))
    dest_id = str(getattr(dest_pair, f"{tgt}_issue_id"))
    source_key = getattr(source_pair, f"{tgt}_issue_key") or source_id
    lock, _ = EchoLock.objects.update_or_create(
        organization=job.organization,
        side=tgt,
        issue_id=source_id,
        field=LINK_LOCK,
        fingerprint=lock_fingerprint(type_name, source_id, dest_id),
        defaults={"expires_at": timezone.now() + echo_ttl(), "pending": 1},
    )
    try:
        job.target.create_issue_link(
            type_name=type_name,
            inward_key=source_key,
            outward_key=getattr(dest_pair, f"{tgt}_issue_key") or dest_id,
        )
    except Exception:
        lock.delete()
        row.delete()  # not mirrored: the next sync of the pair tries again
        raise
    # Jira answers without the new link's id: it is read from the copy's links.
    got = job.target.get_issue(source_key, fields=["issuelinks"])
    new = next(
        (
            r
            for r in rels_of(got.get("fields") or {})
            if r.is_source and r.other_id == dest_id and r.type_name == type_name
        ),
        None,
    )
    if new is not None:
        setattr(row, f"{tgt}_link_id", new.id)
        row.save(update_fields=[f"{tgt}_link_id", "updated_at"])
        lock.delete()  # the row knows the copy by its id now
    logger.info(
        "sync.issue_link_copied",
        extra={
            "organization": job.organization.public_id,
            "direction": job.way,
            "source": rel.id,
            "target": new.id if new else None,
            "type": type_name,
        },
    )


def _remove(job: Job, row: RelationLink, change: Any, *, dry_run: bool) -> None:
    """The link is gone on the source side: its copy goes (the row first, so the event our
    delete causes finds no mirrored link)."""
    tgt = job.target_side
    copy_id = getattr(row, f"{tgt}_link_id")
    if row.status == RelationStatus.LINKED:
        change.fields.append(f"link {getattr(row, f'{job.source_side}_type')} removed")
    if dry_run:
        return
    row.delete()
    if copy_id and row.status == RelationStatus.LINKED:
        with contextlib.suppress(JiraNotFound):
            job.target.delete_issue_link(copy_id)
    logger.info(
        "sync.issue_link_removed",
        extra={"organization": job.organization.public_id, "direction": job.way, "link": copy_id},
    )


def relation_link_retry(*, relation: RelationLink) -> bool:
    """Forget a link left unmirrored for its missing type, so that the next sync of either
    of its issues tries it again (once the type exists there, or the map names another).
    False: the link was mirrored; nothing changes."""
    if relation.status != RelationStatus.NO_TYPE:
        return False
    with transaction.atomic():
        pairs = IssueLink.objects.select_for_update().filter(
            pk__in=[relation.outward_pair_id, relation.inward_pair_id]
        )
        for pair in pairs:
            (pair.state.get(LINKS) or {}).pop(relation.origin, None)
            pair.save(update_fields=["state", "updated_at"])
        relation.delete()
    logger.info(
        "sync.issue_link_retry",
        extra={
            "organization": relation.organization_id,
            "link": relation.local_link_id or relation.remote_link_id,
        },
    )
    return True


# --- link events ----------------------------------------------------------------------------


def relation_event_pair(
    *, organization: Organization, side: str, link: LinkRef
) -> tuple[IssueLink | None, str]:
    """For an `issuelink_*` event from `side`: the pair to sync, or None and why not.

    Ours (a copy whose row or lock we hold), or a link not mirrored being deleted, or one
    whose other end is not synced: nothing to do, no Jira call."""
    known = RelationLink.objects.filter(
        organization=organization, **{f"{side}_link_id": link.id}
    ).first()
    if link.action == "deleted":
        if known is None:
            return None, "echo: the link was not mirrored (or we removed it ourselves)"
        pair = known.outward_pair if known.outward_pair.status == LinkStatus.LINKED else None
        return pair or known.inward_pair, ""
    if known is not None:
        return None, "echo: the link is already mirrored (our own copy coming back)"
    if EchoLock.objects.filter(
        organization=organization,
        side=side,
        issue_id=link.source_issue_id,
        field=LINK_LOCK,
        fingerprint=lock_fingerprint(
            link.type_name, link.source_issue_id, link.destination_issue_id
        ),
        expires_at__gt=timezone.now(),
    ).exists():
        return None, "echo: the link is our own copy being made"
    pairs = {
        getattr(p, f"{side}_issue_id"): p
        for p in IssueLink.objects.filter(
            organization=organization,
            status=LinkStatus.LINKED,
            **{f"{side}_issue_id__in": [link.source_issue_id, link.destination_issue_id]},
        )
    }
    if len(pairs) < 2:
        return None, "the link's other issue is not synced with this organization: left alone"
    return pairs[link.source_issue_id], ""
