"""What a Jira site's admin does for the sync, through Jira's admin REST API."""

from __future__ import annotations

from collections.abc import Iterable

import requests

from jiraapi.events import WEBHOOK_EVENTS


def register_webhook(
    base_url: str,
    auth: tuple[str, str],
    url: str,
    jql: str,
    secret: str | None = None,
    events: Iterable[str] = WEBHOOK_EVENTS,
    name: str = "Jira sync",
) -> dict:
    """Registers a webhook to `url` for the issues that match `jql` (Jira's
    `POST /rest/webhooks/1.0/webhook`); `secret` makes Jira sign each delivery
    (X-Hub-Signature). Returns the webhook as Jira answers it."""
    body = {
        "name": name,
        "url": url,
        "events": list(events),
        "filters": {"issue-related-events-section": jql},
        "excludeBody": False,
    }
    if secret:
        body["secret"] = secret
    response = requests.post(
        f"{base_url}/rest/webhooks/1.0/webhook", json=body, auth=auth, timeout=10
    )
    if not response.ok:
        raise requests.HTTPError(
            f"registering a webhook in {base_url}: {response.status_code} {response.text}",
            response=response,
        )
    return response.json()
