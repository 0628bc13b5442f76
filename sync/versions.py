"""The names a target project offers for components and versions, and versions created there.

Each Jira site defines its own components and versions per project, so a name the source
issue carries may be missing at the target. The engine learns that from Jira's refusal of
the write (an ordinary edit makes no call for it), then asks here which names the project
has: the project is read once and kept a short while per site and project (`PROJECT_TTL`),
so a burst of refusals costs one read. When the organization allows it, a missing version
is created (`POST /version`, name only: release state and dates are not synced); a site that
refuses that for rights (403: the sync account does not administer the project) is not asked
again for that project for `REFUSAL_TTL`.
"""

from __future__ import annotations

import logging
import threading
import time

from jiraapi.client import JiraClient
from jiraapi.errors import JiraAuthError, JiraPermanentError

logger = logging.getLogger(__name__)

VERSION_FIELDS = ("fixVersions", "versions")
# The project list each named field's values come from.
_POOLS = {"components": "components", "fixVersions": "versions", "versions": "versions"}
PROJECT_TTL = 60.0  # seconds a project's names are reused
REFUSAL_TTL = 900.0  # seconds a refused version create (no rights) is not tried again

_lock = threading.Lock()
_projects: dict[tuple[str, str], tuple[float, dict]] = {}
_refusals: dict[tuple[str, str], tuple[float, str]] = {}


def _key(client: JiraClient, project: str) -> tuple[str, str]:
    return (client.base_url, project.upper())


def project_read(client: JiraClient, project: str, *, fresh: bool = False) -> dict:
    """The project (its id, components and versions), from the short cache unless `fresh`."""
    key = _key(client, project)
    with _lock:
        hit = _projects.get(key)
    if hit is not None and not fresh and time.monotonic() - hit[0] < PROJECT_TTL:
        return hit[1]
    found = client.get_project(project)
    with _lock:
        _projects[key] = (time.monotonic(), found)
    return found


def known_names(
    client: JiraClient, project: str, field: str, *, fresh: bool = False
) -> set[str] | None:
    """The names a project's `field` can take (components or versions); None if the field
    does not take its values from the project."""
    pool = _POOLS.get(field)
    if pool is None:
        return None
    found = project_read(client, project, fresh=fresh).get(pool) or []
    return {str(v.get("name")) for v in found if isinstance(v, dict) and v.get("name")}


def versions_create(
    *, client: JiraClient, project: str, names: set[str]
) -> tuple[set[str], list[str]]:
    """Create each version of `names` in `project`. Returns the names the project has now
    (created, or found there by a duplicate-name refusal: made meanwhile) and Jira's
    refusals ("name: reason"). A refusal for rights is remembered (see the module)."""
    key = _key(client, project)
    with _lock:
        refused = _refusals.get(key)
    if refused is not None and time.monotonic() - refused[0] < REFUSAL_TTL:
        return set(), [
            f"{', '.join(sorted(names))}: {refused[1]} (refused before; not asked again yet)"
        ]
    project_id = str(project_read(client, project).get("id") or "")
    there: set[str] = set()
    problems: list[str] = []
    for name in sorted(names):
        try:
            made = client.create_version(project_id=project_id, name=name)
        except JiraAuthError as exc:
            if exc.status != 403:
                raise  # 401: the credentials, the delivery's business
            with _lock:
                _refusals[key] = (time.monotonic(), exc.jira_message)
            problems.append(f"{name}: {exc.jira_message}")
            logger.warning(
                "sync.version_create_refused",
                extra={"site": client.base_url, "project": project, "error": exc.jira_message},
            )
            break
        except JiraPermanentError as exc:
            if "name" in exc.errors and name in (
                known_names(client, project, "fixVersions", fresh=True) or ()
            ):
                there.add(name)  # created meanwhile (by another sync or a person)
                continue
            problems.append(f"{name}: {exc.jira_message}")
            continue
        there.add(name)
        _remember(key, made)
        logger.info(
            "sync.version_created",
            extra={"site": client.base_url, "project": project, "version": name},
        )
    return there, problems


def _remember(key: tuple[str, str], version: dict) -> None:
    """Add a version we created to the cached project, so its next read needs no call."""
    with _lock:
        hit = _projects.get(key)
        if hit is not None:
            project = dict(hit[1])
            project["versions"] = [*(project.get("versions") or []), version]
            _projects[key] = (hit[0], project)


def versions_forget() -> None:
    """Drop every cached project and refusal (a site was reset, or tests start afresh)."""
    with _lock:
        _projects.clear()
        _refusals.clear()
