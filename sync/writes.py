"""Jira writes the engine composes: edits that survive a refused field, transitions, comment
bodies, and finding an issue an earlier attempt created."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jiraapi.client import JiraClient
from jiraapi.errors import JiraNotFound, JiraPermanentError

from .fields import convert_rich_text
from .models import LINK_PROPERTY


def transition_to(client: JiraClient, key: str, status: str) -> str | None:
    """Move an issue to `status` by the transition that reaches it; an error text if none."""
    transitions = client.get_transitions(key)
    for transition in transitions:
        if str(transition.get("to", {}).get("name", "")).lower() == status.lower():
            client.transition_issue(key, transition["id"])
            return None
    reachable = ", ".join(sorted({t.get("to", {}).get("name", "?") for t in transitions}))
    return f"no transition of {key} reaches status '{status}' (reachable: {reachable or 'none'})"


def edit_with_fallback(client: JiraClient, key: str, fields: dict) -> tuple[list[str], list[str]]:
    """Edit; when Jira refuses some fields (400 naming them), write the others and report."""
    try:
        client.edit_issue(key, fields)
        return list(fields), []
    except JiraPermanentError as exc:
        refused = [name for name in exc.errors if name in fields]
        if not refused or isinstance(exc, JiraNotFound):
            raise
        rest = {k: v for k, v in fields.items() if k not in refused}
        if rest:
            client.edit_issue(key, rest)
        return list(rest), [f"{name}: {exc.errors[name]}" for name in refused]


# The project list each named field's values come from.
_NAMED_POOLS = {"components": "components", "fixVersions": "versions", "versions": "versions"}


def known_names(client: JiraClient, project: str, field: str) -> set[str] | None:
    """The names a project's `field` can take (components or versions); None if the field
    does not take its values from the project."""
    pool = _NAMED_POOLS.get(field)
    if pool is None:
        return None
    found = client.get_project(project).get(pool) or []
    return {str(v.get("name")) for v in found if isinstance(v, dict) and v.get("name")}


def comment_copy(comment: dict, source_flavor: str, target_flavor: str) -> Any:
    """The copy of a comment for the other side, headed with its author."""
    author = (comment.get("author") or {}).get("displayName") or "Someone"
    body = convert_rich_text(comment.get("body"), source_flavor, target_flavor)
    if target_flavor == "cloud":
        content = (body or {}).get("content", []) if isinstance(body, dict) else []
        head = {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": author, "marks": [{"type": "strong"}]},
                {"type": "text", "text": " wrote:"},
            ],
        }
        return {"type": "doc", "version": 1, "content": [head, *content]}
    return f"*{author}* wrote:\n\n{body or ''}"


def plain_comment(text: str, client: JiraClient) -> Any:
    if client.is_cloud:
        paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        return {"type": "doc", "version": 1, "content": [paragraph]}
    return text


def find_created(
    client: JiraClient, *, project: str, link_id: int, started: datetime
) -> dict | None:
    """An issue an earlier attempt created (its answer lost), found by our tag."""
    since = started - timedelta(minutes=2)
    jql = (
        f'project = "{project}" '
        f'AND updated >= "{since.strftime("%Y-%m-%d %H:%M")}" ORDER BY created DESC'
    )
    for candidate in client.search(jql, fields=["summary"], page_size=50):
        tag = client.get_property(candidate["key"], LINK_PROPERTY)
        if isinstance(tag, dict) and tag.get("linkId") == link_id:
            return candidate
    return None
