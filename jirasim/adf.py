"""Conversion between Atlassian Document Format (ADF) and Jira wiki markup.

Covers what a sync tool needs to round-trip: paragraphs, hard breaks, headings, bullet and
ordered lists, code blocks, quotes, rules and the common text marks (strong, em, code,
strike, link). Anything else degrades to its plain text.
"""

from __future__ import annotations

import re
from typing import Any

_MARK_WIKI = {"strong": "*", "em": "_", "strike": "-", "underline": "+"}


def is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc"


def _inline_to_wiki(nodes: list[dict]) -> str:
    out = []
    for node in nodes or []:
        kind = node.get("type")
        if kind == "text":
            text = node.get("text", "")
            href = None
            for mark in node.get("marks", []) or []:
                mtype = mark.get("type")
                if mtype == "code":
                    text = "{{" + text + "}}"
                elif mtype == "link":
                    href = (mark.get("attrs") or {}).get("href")
                elif mtype in _MARK_WIKI:
                    sym = _MARK_WIKI[mtype]
                    text = f"{sym}{text}{sym}"
            if href:
                text = f"[{text}|{href}]" if text != href else f"[{href}]"
            out.append(text)
        elif kind == "hardBreak":
            out.append("\n")
        elif kind == "mention":
            attrs = node.get("attrs") or {}
            out.append(f"[~accountid:{attrs.get('id', '')}]")
        elif kind in ("emoji",):
            out.append((node.get("attrs") or {}).get("text", ""))
        elif kind == "inlineCard":
            out.append(f"[{(node.get('attrs') or {}).get('url', '')}]")
        else:
            out.append(_inline_to_wiki(node.get("content", [])))
    return "".join(out)


def _block_to_wiki(node: dict, list_prefix: str = "") -> str:
    kind = node.get("type")
    content = node.get("content", []) or []
    if kind == "paragraph":
        return _inline_to_wiki(content)
    if kind == "heading":
        level = (node.get("attrs") or {}).get("level", 1)
        return f"h{level}. {_inline_to_wiki(content)}"
    if kind in ("bulletList", "orderedList"):
        sym = "*" if kind == "bulletList" else "#"
        lines = []
        for item in content:
            parts = []
            for child in item.get("content", []) or []:
                if child.get("type") in ("bulletList", "orderedList"):
                    parts.append(_block_to_wiki(child, list_prefix + sym))
                else:
                    parts.append(f"{list_prefix}{sym} {_block_to_wiki(child)}")
            lines.append("\n".join(parts))
        return "\n".join(lines)
    if kind == "codeBlock":
        lang = (node.get("attrs") or {}).get("language")
        head = "{code:" + lang + "}" if lang else "{code}"
        return head + "\n" + _inline_to_wiki(content) + "\n{code}"
    if kind == "blockquote":
        return "{quote}\n" + "\n\n".join(_block_to_wiki(c) for c in content) + "\n{quote}"
    if kind == "rule":
        return "----"
    if kind == "text":
        return _inline_to_wiki([node])
    return "\n\n".join(_block_to_wiki(c) for c in content) if content else ""


def adf_to_wiki(doc: Any, *, panels: bool = False) -> str | None:
    """Render an ADF document as wiki markup (what REST v2 and webhooks carry).

    `panels`: render a panel as Jira Cloud does, ``{panel:bgColor=...}`` ... ``{panel}``
    (for a site that keeps the ADF it was given; otherwise a panel degrades to its text).
    """
    if doc is None:
        return None
    if isinstance(doc, str):
        return doc
    blocks = [
        _panel_to_wiki(b) if panels else _block_to_wiki(b) for b in doc.get("content", []) or []
    ]
    return "\n\n".join(blocks)


_PANEL_COLORS = {"info": "#deebff", "note": "#eae6ff", "success": "#e3fcef", "warning": "#fffae6"}
_PANEL_COLORS["error"] = "#ffebe6"


def _panel_to_wiki(node: dict) -> str:
    if node.get("type") != "panel":
        return _block_to_wiki(node)
    kind = (node.get("attrs") or {}).get("panelType", "info")
    inner = "\n\n".join(_block_to_wiki(c) for c in node.get("content", []) or [])
    return "{panel:bgColor=" + _PANEL_COLORS.get(kind, "#deebff") + "}\n" + inner + "\n{panel}"


_INLINE_RE = re.compile(
    r"\{\{(?P<code>.+?)\}\}"
    r"|\[(?P<ltext>[^\]|]+)\|(?P<lhref>[^\]]+)\]"
    r"|\[(?P<bare>https?://[^\]]+)\]"
    r"|\[~accountid:(?P<mention>[^\]]+)\]"
    r"|(?<![\w*])\*(?P<strong>[^*\n]+)\*(?![\w*])"
    r"|(?<![\w_])_(?P<em>[^_\n]+)_(?![\w_])"
)


def _wiki_inline(text: str) -> list[dict]:
    nodes: list[dict] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if i:
            nodes.append({"type": "hardBreak"})
        pos = 0
        for m in _INLINE_RE.finditer(line):
            if m.start() > pos:
                nodes.append({"type": "text", "text": line[pos : m.start()]})
            if m.group("code") is not None:
                nodes.append({"type": "text", "text": m.group("code"), "marks": [{"type": "code"}]})
            elif m.group("lhref") is not None:
                mark = {"type": "link", "attrs": {"href": m.group("lhref")}}
                nodes.append({"type": "text", "text": m.group("ltext"), "marks": [mark]})
            elif m.group("bare") is not None:
                href = m.group("bare")
                mark = {"type": "link", "attrs": {"href": href}}
                nodes.append({"type": "text", "text": href, "marks": [mark]})
            elif m.group("mention") is not None:
                nodes.append({"type": "mention", "attrs": {"id": m.group("mention")}})
            elif m.group("strong") is not None:
                nodes.append(
                    {"type": "text", "text": m.group("strong"), "marks": [{"type": "strong"}]}
                )
            else:
                nodes.append({"type": "text", "text": m.group("em"), "marks": [{"type": "em"}]})
            pos = m.end()
        if pos < len(line):
            nodes.append({"type": "text", "text": line[pos:]})
    return nodes


_HEADING_RE = re.compile(r"^h([1-6])\.\s+(.*)$")
_LIST_RE = re.compile(r"^([*#]+)\s+(.*)$")


def wiki_to_adf(text: str | None) -> dict | None:
    """Build an ADF document from wiki markup (what REST v3 returns)."""
    if text is None:
        return None
    content: list[dict] = []
    chunks = re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if text else []
    i = 0
    while i < len(chunks):
        chunk = chunks[i]
        if chunk.startswith("{code"):
            body = [chunk]
            while not body[-1].rstrip().endswith("{code}") and i + 1 < len(chunks):
                i += 1
                body.append(chunks[i])
            raw = "\n\n".join(body)
            head, _, rest = raw.partition("\n")
            lang = head[6:-1] if head.startswith("{code:") else None
            code = rest.rsplit("{code}", 1)[0].rstrip("\n")
            node: dict = {"type": "codeBlock", "content": [{"type": "text", "text": code}]}
            if lang:
                node["attrs"] = {"language": lang}
            content.append(node)
        elif chunk.strip() == "----":
            content.append({"type": "rule"})
        elif _HEADING_RE.match(chunk):
            m = _HEADING_RE.match(chunk)
            content.append(
                {
                    "type": "heading",
                    "attrs": {"level": int(m.group(1))},
                    "content": _wiki_inline(m.group(2)),
                }
            )
        elif all(_LIST_RE.match(line) for line in chunk.split("\n")):
            first = _LIST_RE.match(chunk.split("\n")[0]).group(1)
            kind = "bulletList" if first.startswith("*") else "orderedList"
            items = []
            for line in chunk.split("\n"):
                m = _LIST_RE.match(line)
                para = {"type": "paragraph", "content": _wiki_inline(m.group(2))}
                items.append({"type": "listItem", "content": [para]})
            content.append({"type": kind, "content": items})
        else:
            inline = _wiki_inline(chunk)
            para: dict = {"type": "paragraph"}
            if inline:
                para["content"] = inline
            content.append(para)
        i += 1
    return {"type": "doc", "version": 1, "content": content}


def validate_adf(value: Any) -> bool:
    if not is_adf(value):
        return False
    return isinstance(value.get("content", []), list)


def text_length(doc: Any) -> int:
    """The characters of a document's text nodes (what Cloud counts against a field's limit)."""
    if isinstance(doc, dict):
        own = len(doc["text"]) if isinstance(doc.get("text"), str) else 0
        return own + sum(text_length(n) for n in doc.get("content") or [])
    if isinstance(doc, list):
        return sum(text_length(n) for n in doc)
    return 0
