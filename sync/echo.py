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

from jiraapi import adf
from organizations.models import Organization

from .models import EchoLock

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# ADF on one side, wiki markup (or webhook text) on the other: compared by their words.
RICH_TEXT = frozenset({"description", "comment", "environment"})


def _text_of(name: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    if name in RICH_TEXT or (isinstance(value, dict) and value.get("type") == "doc"):
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
    """
    previous = previous or {}
    now = timezone.now()
    expires = now + echo_ttl()
    with transaction.atomic():
        for name, value in values.items():
            before = fingerprint(name, previous[name]) if name in previous else ""
            lock, created = EchoLock.objects.select_for_update().get_or_create(
                organization=organization,
                side=side,
                issue_id=str(issue_id),
                field=name,
                fingerprint=fingerprint(name, value),
                defaults={"expires_at": expires, "previous": before},
            )
            if not created:
                lock.pending = lock.pending + 1 if lock.expires_at > now else 1
                lock.expires_at = expires
                lock.previous = before
                lock.save(update_fields=["pending", "expires_at", "previous"])


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

    Without `agreed` (comments), a matching live lock is enough.
    """
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
            if agreed is not None and not is_echo(
                lock,
                name,
                value,
                agreed=agreed.get(name),
                changed_from=(changed_from or {}).get(name),
            ):
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
