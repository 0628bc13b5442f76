"""What can go wrong talking to Jira, sorted by what the caller should do about it."""


class JiraError(Exception):
    """Any failed Jira call. `retryable` says whether trying again later can succeed."""

    retryable = False
    # The site that answered (its base URL) and the account we called it as, set by the
    # client on an HTTP answer.
    base_url = ""
    user = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.messages = messages or []
        self.errors = errors or {}
        self.retry_after = retry_after

    @property
    def jira_message(self) -> str:
        """Jira's own words (errorMessages and per-field errors), for the operator."""
        parts = list(self.messages) + [f"{k}: {v}" for k, v in self.errors.items()]
        return "; ".join(parts) or str(self)


class JiraTransientError(JiraError):
    """5xx, timeouts, refused connections: retry with backoff."""

    retryable = True


class JiraRateLimited(JiraTransientError):
    """429 (or 503 with Retry-After): retry no earlier than `retry_after` seconds."""


class JiraPermanentError(JiraError):
    """4xx: the request itself is wrong; retrying cannot help."""


class JiraNotFound(JiraPermanentError):
    """404: the issue (or comment) does not exist, or we may not see it."""


class JiraAuthError(JiraPermanentError):
    """401/403: credentials are wrong or lack a permission."""


class JiraNotConfigured(JiraPermanentError):
    """A site's URL or credentials are missing from the configuration."""


class JiraRedirectRefused(JiraPermanentError):
    """Jira answered with a redirect to another origin (scheme, host or port): never followed,
    so neither credentials nor a request body can be sent where the site did not live."""


class JiraUnsafeUrl(JiraPermanentError):
    """The site's URL (or the address its host name resolves to now) is not allowed by the
    URL policy: another scheme than http(s), or a loopback, private, link-local or metadata
    address that is not on the allow-list."""
