"""System checks: warn when a development default protects real data."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def development_keys_check(app_configs, **kwargs) -> list[Warning]:
    if settings.DEBUG:
        return []
    warnings = []
    if settings.DEV_ENCRYPTION_KEY in settings.FIELD_ENCRYPTION_KEYS:
        warnings.append(
            Warning(
                "Secrets are encrypted at rest with the public development key.",
                hint="Set FIELD_ENCRYPTION_KEYS to a long random value (see README).",
                id="syncapp.W001",
            )
        )
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        warnings.append(
            Warning(
                "SECRET_KEY is the public development default.",
                hint="Set SECRET_KEY to a long random value.",
                id="syncapp.W002",
            )
        )
    return warnings
