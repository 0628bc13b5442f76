"""Reads on organizations."""

import hmac

from django.db.models import QuerySet
from django.utils import timezone

from .models import Organization, ProjectMapping


def organization_list() -> QuerySet[Organization]:
    return Organization.objects.all()


def organization_get(*, public_id: str, project_key: str = "") -> Organization | None:
    """One organization; with `project_key`, also whether it maps that partner project
    (`maps_project`), in the same query.

    This runs for every webhook delivery, so the combined form is plain SQL: the ORM's
    compilation of the EXISTS subquery cost twice the query itself (`make bench`'s ingest
    profile, bench/results/profile-ingest.txt: the organization lookup was 23% of a request).
    """
    if not project_key:
        return Organization.objects.filter(public_id=public_id).first()
    mappings, organizations = ProjectMapping._meta.db_table, Organization._meta.db_table
    # Table names from the models; every value is a bound parameter.
    sql = (
        f"SELECT o.*, EXISTS (SELECT 1 FROM {mappings} m WHERE m.organization_id = o.id"  # noqa: S608
        " AND m.remote_project_key = %s) AS maps_project"
        f" FROM {organizations} o WHERE o.public_id = %s"
    )
    return next(iter(Organization.objects.raw(sql, [project_key, public_id])), None)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def organization_secret_matches(*, organization: Organization, secret: str) -> bool:
    """The current incoming secret, or the previous one inside its grace period.

    Constant-time comparisons, and both are always compared so timing tells nothing.
    """
    current = bool(organization.incoming_secret) and _same(organization.incoming_secret, secret)
    previous = organization.previous_incoming_secret
    in_grace = bool(
        previous
        and organization.previous_secret_valid_until
        and timezone.now() < organization.previous_secret_valid_until
    )
    previous_ok = _same(previous or "\0", secret) and in_grace
    return current or previous_ok


def organization_partner_jql(*, organization: Organization) -> str:
    """The JQL the partner's admin puts on their webhook: only the mapped partner projects."""
    keys = sorted(organization.project_mappings.values_list("remote_project_key", flat=True))
    if not keys:
        return 'project = "YOUR_PROJECT_KEY"'
    if len(keys) == 1:
        return f'project = "{keys[0]}"'
    return "project in ({})".format(", ".join(f'"{k}"' for k in keys))
