"""System checks: refuse to run on a public development key when DEBUG is off."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

_PROBLEMS = (
    (
        "001",
        "Secrets are encrypted at rest with the public development key.",
        "Set FIELD_ENCRYPTION_KEYS to a long random value (see README).",
    ),
    (
        "002",
        "SECRET_KEY is the public development default.",
        "Set SECRET_KEY to a long random value.",
    ),
)


@register(Tags.security)
def development_keys_check(app_configs, **kwargs) -> list[CheckMessage]:
    """An Error (the service does not start) with DEBUG off, unless ALLOW_DEV_KEYS is set
    for tests and CI: then a Warning."""
    if settings.DEBUG:
        return []
    found = (
        settings.DEV_ENCRYPTION_KEY in settings.FIELD_ENCRYPTION_KEYS,
        settings.SECRET_KEY == settings.DEV_SECRET_KEY,
    )
    level, letter = (Warning, "W") if settings.ALLOW_DEV_KEYS else (Error, "E")
    hint_tail = "" if settings.ALLOW_DEV_KEYS else " (ALLOW_DEV_KEYS=true allows it in tests/CI)"
    return [
        level(message, hint=hint + hint_tail, id=f"syncapp.{letter}{number}")
        for (number, message, hint), is_found in zip(_PROBLEMS, found, strict=True)
        if is_found
    ]


def refuse_development_keys() -> None:
    """For processes that run no system checks (gunicorn, the Celery worker): stop on the
    same errors `manage.py check` reports."""
    errors = [m for m in development_keys_check(None) if m.is_serious()]
    if errors:
        raise ImproperlyConfigured(
            "Refusing to start: " + " ".join(f"{e.msg} {e.hint} [{e.id}]" for e in errors)
        )
