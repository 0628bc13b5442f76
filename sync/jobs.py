"""A sync job: one issue, one organization, one direction, with the two sites' clients.

`job_build` is the one place a job is made (webhook deliveries and the backfill alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jiraapi.client import CLOUD, JiraClient
from jiraapi.errors import JiraPermanentError
from organizations.models import Organization, ProjectMapping

from . import fields
from .mapping import PUSH, SIDES, FieldPair, field_pairs, field_pairs_of
from .models import IssueLink, Side
from .sites import local_client, remote_client


@dataclass
class PeerSource:
    """The partner's issue as its message describes it, in the place of a Jira client for
    the source side of a sync (nothing here calls anywhere)."""

    flavor: str
    base_url: str
    comments: list[dict] = field(default_factory=list)
    changed_at: str | None = None
    changed: tuple[str, ...] = ()
    name: str = "partner install"

    @property
    def is_cloud(self) -> bool:
        return self.flavor == CLOUD

    def get_comments(self, key: str) -> list[dict]:
        return self.comments

    def get_changelog(self, key: str) -> list[dict]:
        """One history: the fields this message changed, when the partner changed them."""
        if not self.changed_at:
            return []
        items = [{"field": name, "fieldId": name} for name in self.changed]
        return [{"created": self.changed_at, "items": items}]

    def get_issue(self, *args, **kwargs) -> dict:
        raise JiraPermanentError("the partner's issue is read from its messages only")

    def find_user(self, email: str) -> None:
        return None  # the partner's install matches its own users


@dataclass(frozen=True)
class Job:
    organization: Organization
    project_mapping: ProjectMapping
    way: str  # PUSH or PULL
    source: JiraClient | PeerSource
    target: JiraClient | PeerSource
    issue_id: str  # the source issue
    issue_key: str
    issue: dict | None = None  # the source issue as REST returns it; None once deleted
    comments_changed: bool = False
    pairs: tuple[FieldPair, ...] = ()
    # The organization for which we deleted the source issue ourselves (its partner deleted
    # theirs); None when the source issue was not deleted by us.
    deleted_for: Organization | None = None
    # PUSH: the other partner organization this local issue came from (its link's origin is
    # that partner's side), or None when it originates here or at this organization.
    came_from: Organization | None = None
    user_cache: dict = field(default_factory=dict, compare=False)
    # Scenario B: the partner install's change, its fields in canonical form (only those it
    # sent: each is a change the partner judged genuine). None: read from `issue`.
    values: dict | None = None
    # The event was about the issue's links (an issue link made or unmade): they are
    # compared with the mirrored ones whatever the pair's fingerprint says (`relations.py`).
    links_changed: bool = False

    def source_value(self, name: str):
        """The source's value of field `name`, canonical."""
        if self.values is not None:
            return self.values.get(name)
        return fields.read(name, (self.issue or {}).get("fields") or {})

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


def job_build(
    *,
    project_mapping: ProjectMapping,
    way: str,
    issue_id: str,
    issue_key: str = "",
    issue: dict | None = None,
    comments_changed: bool = False,
    deleted_for: Organization | None = None,
    fresh: bool = False,
    links: Sequence[IssueLink] | None = None,
) -> Job:
    """`fresh`: `project_mapping.organization` was read just now (a delivery's), so its
    field pairs may come from this process's copy of that configuration version. `links`:
    the source issue's links of every organization, read already (PUSH: whether the issue
    came from another partner)."""
    organization = project_mapping.organization
    remote = peer_of(organization) if organization.is_app else remote_client(organization)
    source = local_client() if way == PUSH else remote
    target = remote if way == PUSH else local_client()
    return Job(
        organization=organization,
        project_mapping=project_mapping,
        way=way,
        source=source,
        target=target,
        issue_id=str(issue_id),
        issue_key=(issue or {}).get("key") or issue_key or str(issue_id),
        issue=issue,
        comments_changed=comments_changed,
        pairs=field_pairs_of(organization, way) if fresh else tuple(field_pairs(organization, way)),
        deleted_for=deleted_for,
        came_from=_came_from(organization, str(issue_id), links) if way == PUSH else None,
    )


def peer_of(organization: Organization) -> PeerSource:
    """The partner's side of an organization connected app to app (Scenario B): its issues
    are known only from its install's messages (`peer.py`)."""
    return PeerSource(flavor=organization.remote_flavor, base_url="")


def _came_from(
    organization: Organization, local_issue_id: str, links: Sequence[IssueLink] | None = None
) -> Organization | None:
    """The other partner organization a local issue was created for, if any (from `links`,
    the issue's links, when given)."""
    if links is None:
        origin = (
            IssueLink.objects.select_related("organization")
            .filter(local_issue_id=local_issue_id, origin=Side.REMOTE)
            .exclude(organization=organization)
            .first()
        )
    else:
        origin = min(
            (
                link
                for link in links
                if link.local_issue_id == local_issue_id
                and link.origin == Side.REMOTE
                and link.organization_id != organization.pk
            ),
            key=lambda link: link.pk,
            default=None,
        )
    return origin.organization if origin is not None else None


def issue_in_push_scope(source: JiraClient, project_mapping: ProjectMapping, job: Job) -> bool:
    """An issue already linked stays linked; a new one must match the mapping's JQL.

    Cloud's search lags behind writes (seconds to minutes), and the issue in hand was
    changed a moment ago: `reconcileIssues` makes the search reflect its current state.
    Data Center has no such parameter (see `JiraClient.search` and the README).
    """
    linked = IssueLink.objects.filter(
        organization=project_mapping.organization, local_issue_id=job.issue_id
    ).exclude(remote_issue_id=None)
    if linked.exists():
        return True
    jql = f"({project_mapping.push_jql}) AND key = {job.issue_key}"
    reconcile = [job.issue_id] if job.issue_id.isdigit() else None
    return bool(list(source.search(jql, fields=["summary"], page_size=1, reconcile=reconcile)))


def side_id(link: IssueLink, side: str) -> str | None:
    return getattr(link, f"{side}_issue_id")


def side_key(link: IssueLink, side: str) -> str:
    return getattr(link, f"{side}_issue_key") or side_id(link, side) or ""
