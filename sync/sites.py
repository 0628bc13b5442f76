"""Jira clients for the local site and each partner site, reused across tasks in a process.

Reuse keeps HTTP connections alive (one `requests.Session` per site and credentials).
"""

import contextlib
import hashlib
import logging
import threading

from django.conf import settings
from django.core.cache import cache

from jiraapi.client import JiraClient, JiraSite
from jiraapi.errors import JiraError, JiraNotConfigured
from organizations.jira_urls import jira_url_policy
from organizations.models import Organization

logger = logging.getLogger(__name__)

_clients: dict[str, JiraClient] = {}
_lock = threading.Lock()
# The sync account of each site (its ids), asked once per process per site and credentials.
_accounts: dict[str, frozenset[str]] = {}
ACCOUNT_MEMORY_SECONDS = 24 * 3600


def _client_for(site: JiraSite) -> JiraClient:
    if not site.base_url:
        raise JiraNotConfigured(f"no URL is configured for the {site.name} Jira site")
    policy = jira_url_policy()  # checked again on every connection (DNS can change)
    # Keyed by every credential and the URL policy, so a changed token gets a new client.
    key = hashlib.sha256(
        "\0".join((site.base_url, site.flavor, site.user, site.token, repr(policy))).encode()
    ).hexdigest()
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = JiraClient(site, url_policy=policy)
        return client


def local_site() -> JiraSite:
    return JiraSite(
        name="local (LOCAL_JIRA_URL)",
        base_url=settings.LOCAL_JIRA_URL,
        flavor=settings.LOCAL_JIRA_FLAVOR,
        user=settings.LOCAL_JIRA_USER,
        token=settings.LOCAL_JIRA_TOKEN,
    )


def remote_site(organization: Organization) -> JiraSite:
    return JiraSite(
        name=f"partner ({organization.public_id})",
        base_url=organization.remote_base_url,
        flavor=organization.remote_flavor,
        user=organization.remote_user,
        token=organization.remote_token,
    )


def local_client() -> JiraClient:
    return _client_for(local_site())


def remote_client(organization: Organization) -> JiraClient:
    return _client_for(remote_site(organization))


def sync_account_ids(client: JiraClient) -> frozenset[str] | None:
    """The ids (accountId; name and key on Data Center) of the account `client` acts as.

    Asked of the site (`myself`) once, then kept in this process and in the shared cache
    (for a day), so other worker processes learn it without a call: a delivery never pays a
    call for it after the first anywhere. None when the site cannot say now (the caller then
    decides without it).
    """
    key = "\0".join(
        (client.base_url, client.site.user, hashlib.sha256(client.site.token.encode()).hexdigest())
    )
    ids = _accounts.get(key)
    if ids is not None:
        return ids
    shared = "sync:account:" + hashlib.sha256(key.encode()).hexdigest()[:40]
    try:
        cached = cache.get(shared)
    except Exception:  # a cache outage costs a call, not the delivery
        cached = None
    if isinstance(cached, list | tuple | frozenset) and cached:
        ids = frozenset(str(v) for v in cached)
    else:
        try:
            me = client.myself() or {}
        except JiraError as exc:
            logger.warning(
                "sync.account_unknown", extra={"site": client.site.name, "error": str(exc)}
            )
            return None
        ids = frozenset(str(me[k]) for k in ("accountId", "name", "key") if me.get(k))
        if ids:
            with contextlib.suppress(Exception):
                cache.set(shared, sorted(ids), ACCOUNT_MEMORY_SECONDS)
    if ids:
        with _lock:
            _accounts[key] = ids
    return ids or None


def learn_local_sync_account() -> None:
    """Learn our own site's sync account ahead of the first delivery (a worker starting):
    every genuine change's event is checked against it, and the first would otherwise pay
    the `myself` call. Never raises; a site that cannot say now is asked again later."""
    try:
        sync_account_ids(local_client())
    except Exception:  # not configured, or unreachable: the first delivery asks instead
        logger.info("sync.account_not_learnt_at_start", exc_info=True)
