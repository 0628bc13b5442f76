"""The Jira URL policy (jiraapi.urlpolicy) read from the settings: the edge where it meets
Django. Used when a URL is saved (Organization.clean, the LOCAL_JIRA_URL system check) and
when a client is built (sync.sites), which checks again on every connection."""

from functools import lru_cache

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError

from jiraapi.urlpolicy import UnsafeUrl, UrlPolicy

HINT = "Set JIRA_ALLOW_HTTP / JIRA_ALLOWED_HOSTS to allow it (README, Security notes)."


def jira_url_policy() -> UrlPolicy:
    # Read on every client look-up (tests change settings); built once per distinct value.
    return _policy(bool(settings.JIRA_ALLOW_HTTP), tuple(settings.JIRA_ALLOWED_HOSTS))


@lru_cache(maxsize=8)
def _policy(allow_http: bool, allowed_hosts: tuple[str, ...]) -> UrlPolicy:
    return UrlPolicy.build(allow_http=allow_http, allowed_hosts=allowed_hosts)


def validate_jira_url(url: str) -> None:
    """A `ValidationError` naming the reason when the policy refuses `url`."""
    try:
        jira_url_policy().check(url)
    except UnsafeUrl as exc:
        raise ValidationError(f"{exc}. {HINT}", code="unsafe_url") from None


@checks.register(checks.Tags.security)
def local_jira_url_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not settings.LOCAL_JIRA_URL:
        return []
    try:
        jira_url_policy().check(settings.LOCAL_JIRA_URL)
    except UnsafeUrl as exc:
        return [
            checks.Error(f"LOCAL_JIRA_URL is refused: {exc}", hint=HINT, id="organizations.E001")
        ]
    return []
