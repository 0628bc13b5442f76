"""People across sites: users with no counterpart on the other side, kept for the admin.

The engine records each user it could not match (neither in the organization's user map
nor found by e-mail); the dashboard lists them so the admin can add them to the map.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from organizations.models import Organization

from .fields import without_nul
from .models import UnmappedUser


def unmapped_user_record(*, organization: Organization, side: str, user: dict, field: str) -> None:
    """Note that `user` (canonical, living on `side`) was met with no counterpart."""
    user_id = without_nul(str(user.get("id") or ""))[:128]
    if not user_id:
        return
    name = without_nul(str(user.get("name") or ""))[:255]
    email = without_nul(str(user.get("email") or ""))[:254]
    changes = {"last_seen": timezone.now(), "field": field[:64], "count": F("count") + 1}
    if name:
        changes["display_name"] = name
    if email:
        changes["email"] = email
    known = UnmappedUser.objects.filter(organization=organization, side=side, user_id=user_id)
    if known.update(**changes):
        return
    try:
        with transaction.atomic():  # a savepoint: a concurrent first sighting may win
            UnmappedUser.objects.create(
                organization=organization,
                side=side,
                user_id=user_id,
                display_name=name,
                email=email,
                field=field[:64],
                last_seen=changes["last_seen"],
            )
    except IntegrityError:
        known.update(**changes)
