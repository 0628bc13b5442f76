"""Jira writes the engine composes: edits that survive a refused field, transitions, comment
bodies, and finding an issue an earlier attempt created."""

from __future__ import annotations

import re
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


_WIKI_HEADER = re.compile(r"\A\s*\*[^*\r\n]+\* wrote:[ \t]*(?:\r?\n)+")
_HEADER_TEXT = re.compile(r"\A.+ wrote:\s*\Z", re.DOTALL)


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


def _is_header_paragraph(node: Any) -> bool:
    """The ADF paragraph `comment_copy` puts first: the author in bold, then " wrote:"."""
    if not isinstance(node, dict) or node.get("type") != "paragraph":
        return False
    parts = [n for n in node.get("content") or [] if isinstance(n, dict)]
    if not parts or parts[0].get("type") != "text":
        return False
    if not any(
        m.get("type") == "strong" for m in parts[0].get("marks") or [] if isinstance(m, dict)
    ):
        return False
    text = "".join(str(n.get("text") or "") for n in parts if n.get("type") == "text")
    return bool(_HEADER_TEXT.match(text))


def without_copy_header(body: Any) -> Any:
    """A copy's body without the "<author> wrote:" header `comment_copy` gave it (as the
    copy's site renders it: ADF on Cloud, wiki markup on Data Center). A body without the
    header is returned unchanged."""
    if isinstance(body, str):
        return _WIKI_HEADER.sub("", body, count=1)
    if isinstance(body, dict) and body.get("type") == "doc":
        content = list(body.get("content") or [])
        if content and _is_header_paragraph(content[0]):
            return {**body, "content": content[1:]}
    return body


def comment_back(comment: dict, source_flavor: str, target_flavor: str) -> Any:
    """A copy's body for its original (the copy was edited): the copy without our header."""
    return convert_rich_text(without_copy_header(comment.get("body")), source_flavor, target_flavor)


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
