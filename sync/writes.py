"""Jira writes the engine composes: edits that survive a refused field, transitions (see
`transitions.py`), comment bodies, and finding an issue an earlier attempt created."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from jiraapi.client import JiraClient
from jiraapi.errors import JiraNotFound, JiraPermanentError

from .fields import convert_rich_text
from .models import LINK_PROPERTY
from .transitions import Moved, transition_to


def edit_with_fallback(
    client: JiraClient, key: str, fields: dict
) -> tuple[list[str], dict[str, str]]:
    """Edit; when Jira refuses some fields (400 naming them, e.g. a field that is not on the
    issue's edit screen), write the others. Returns the fields written and, per refused
    field, Jira's reason."""
    try:
        client.edit_issue(key, fields)
        return list(fields), {}
    except JiraPermanentError as exc:
        refused = {name: str(exc.errors[name]) for name in exc.errors if name in fields}
        if not refused or isinstance(exc, JiraNotFound):
            raise
        rest = {k: v for k, v in fields.items() if k not in refused}
        if rest:
            client.edit_issue(key, rest)
        return list(rest), refused


# The verb of a copy's header: "<author> wrote:" on comments, "<author> logged:" on worklogs.
WROTE, LOGGED = "wrote", "logged"


def _wiki_header(verb: str) -> re.Pattern:
    return re.compile(r"\A\s*\*[^*\r\n]+\* " + verb + r":[ \t]*(?:(?:\r?\n)+|\Z)")


def _header_text(verb: str) -> re.Pattern:
    return re.compile(r"\A.+ " + verb + r":\s*\Z", re.DOTALL)


_WIKI_HEADERS = {verb: _wiki_header(verb) for verb in (WROTE, LOGGED)}
_HEADER_TEXTS = {verb: _header_text(verb) for verb in (WROTE, LOGGED)}


def comment_copy(
    comment: dict, source_flavor: str, target_flavor: str, *, verb: str = WROTE, key: str = "body"
) -> Any:
    """The copy of a comment (or of a worklog's `comment`) for the other side, headed with
    its author."""
    author = (comment.get("author") or {}).get("displayName") or "Someone"
    body = convert_rich_text(comment.get(key), source_flavor, target_flavor)
    if target_flavor == "cloud":
        content = (body or {}).get("content", []) if isinstance(body, dict) else []
        head = {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": author, "marks": [{"type": "strong"}]},
                {"type": "text", "text": f" {verb}:"},
            ],
        }
        return {"type": "doc", "version": 1, "content": [head, *content]}
    return f"*{author}* {verb}:\n\n{body or ''}"


def _is_header_paragraph(node: Any, verb: str = WROTE) -> bool:
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
    return bool(_HEADER_TEXTS[verb].match(text))


def without_copy_header(body: Any, verb: str = WROTE) -> Any:
    """A copy's body without the "<author> wrote:" header `comment_copy` gave it (as the
    copy's site renders it: ADF on Cloud, wiki markup on Data Center). A body without the
    header is returned unchanged."""
    if isinstance(body, str):
        return _WIKI_HEADERS[verb].sub("", body, count=1)
    if isinstance(body, dict) and body.get("type") == "doc":
        content = list(body.get("content") or [])
        if content and _is_header_paragraph(content[0], verb):
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


# Walking the keys after the highest one search shows: stop after this many keys in a row
# that do not exist, and after this many keys in all.
PROBE_MISSES = 5
PROBE_LIMIT = 100


def find_created(
    client: JiraClient, *, project: str, link_id: int, started: datetime
) -> dict | None:
    """An issue an earlier attempt created (its answer lost), found by our tag.

    Search alone cannot say "it was not created": Cloud's search catches up with new issues
    after seconds to minutes, and the id that `reconcileIssues` would need is what the lost
    answer held. A GET by key is consistent at once, and keys are numbered in order per
    project, so after the search, the keys beyond the highest one it shows are read one by
    one (with our tag property) until a few in a row do not exist.
    """
    since = started - timedelta(minutes=2)
    jql = (
        f'project = "{project}" '
        f'AND updated >= "{since.strftime("%Y-%m-%d %H:%M")}" ORDER BY created DESC'
    )
    highest = 0
    for candidate in client.search(jql, fields=["summary"], page_size=50):
        highest = max(highest, key_number(candidate["key"]))
        tag = client.get_property(candidate["key"], LINK_PROPERTY)
        if _ours(tag, link_id):
            return candidate
    # The project's highest key that search shows (issues untouched lately count too).
    last = next(iter(client.search(f'project = "{project}" ORDER BY key DESC', page_size=1)), None)
    highest = max(highest, key_number(last["key"]) if last else 0)
    return _probe_keys(client, project=project, after=highest, link_id=link_id)


def _probe_keys(client: JiraClient, *, project: str, after: int, link_id: int) -> dict | None:
    misses = 0
    for number in range(after + 1, after + 1 + PROBE_LIMIT):
        try:
            issue = client.get_issue(
                f"{project}-{number}", fields=["summary"], properties=[LINK_PROPERTY]
            )
        except JiraNotFound:
            misses += 1
            if misses >= PROBE_MISSES:
                return None
            continue
        misses = 0
        if _ours((issue.get("properties") or {}).get(LINK_PROPERTY), link_id):
            return issue
    return None


def _ours(tag: Any, link_id: int) -> bool:
    return isinstance(tag, dict) and tag.get("linkId") == link_id


def key_number(key: str) -> int:
    """The number of an issue key (`ABC-12` -> 12); 0 if it has none."""
    number = str(key).rpartition("-")[2]
    return int(number) if number.isdigit() else 0


__all__ = [
    "Moved",
    "comment_copy",
    "edit_with_fallback",
    "find_created",
    "plain_comment",
    "transition_to",
]
