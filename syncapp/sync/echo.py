"""Echo locks (DESIGN.md section 4): recognising our own writes when their webhooks come back.

Before a write, `echo_expect` commits one lock per written field with the fingerprint of
the value written. When an event arrives, `echo_consume` tells for each changed field
whether it is such an echo, consuming the lock (once per write).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from organizations.models import Organization
from syncapp.jira import adf

from .models import EchoLock

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _text_of(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    if name == "description" or (isinstance(value, dict) and value.get("type") == "doc"):
        text = adf.adf_to_wiki(value) if isinstance(value, dict) else str(value)
        # Markup renders differently on each side; the words are what identify a value.
        return _NON_WORD.sub(" ", text).strip().lower()
    if isinstance(value, list):
        return " ".join(sorted(_text_of(name, v) for v in value))
    if isinstance(value, dict):
        for key in ("id", "value", "name", "accountId"):
            if value.get(key):
                return str(value[key])
        return ""
    return str(value).strip()


def fingerprint(name: str, value: Any) -> str:
    return hashlib.sha256(f"{name}\0{_text_of(name, value)}".encode()).hexdigest()[:40]


def echo_ttl() -> timedelta:
    return timedelta(seconds=settings.ECHO_LOCK_TTL_SECONDS)


def echo_expect(
    *, organization: Organization, side: str, issue_id: str, values: dict[str, Any]
) -> None:
    """Commit a lock per field about to be written to `side` (before the write)."""
    expires = timezone.now() + echo_ttl()
    with transaction.atomic():
        for name, value in values.items():
            lock, created = EchoLock.objects.get_or_create(
                organization=organization,
                side=side,
                issue_id=str(issue_id),
                field=name,
                fingerprint=fingerprint(name, value),
                defaults={"expires_at": expires},
            )
            if not created:
                EchoLock.objects.filter(pk=lock.pk).update(
                    pending=F("pending") + 1 if lock.expires_at > timezone.now() else 1,
                    expires_at=expires,
                )


def echo_consume(
    *, organization: Organization, side: str, issue_id: str, values: dict[str, Any]
) -> set[str]:
    """The fields among `values` (name -> new value) that are echoes; each lock used once."""
    now = timezone.now()
    echoes: set[str] = set()
    for name, value in values.items():
        with transaction.atomic():
            lock = (
                EchoLock.objects.select_for_update()
                .filter(
                    organization=organization,
                    side=side,
                    issue_id=str(issue_id),
                    field=name,
                    fingerprint=fingerprint(name, value),
                    expires_at__gt=now,
                    pending__gt=0,
                )
                .first()
            )
            if lock is None:
                continue
            if lock.pending > 1:
                EchoLock.objects.filter(pk=lock.pk).update(pending=F("pending") - 1)
            else:
                lock.delete()
            echoes.add(name)
    return echoes


def echo_discard(*, organization: Organization, side: str, issue_id: str, field: str) -> None:
    """Forget the locks of a field whose write failed (no echo will come)."""
    EchoLock.objects.filter(
        organization=organization, side=side, issue_id=str(issue_id), field=field
    ).delete()


def echo_purge_expired() -> int:
    deleted, _ = EchoLock.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
