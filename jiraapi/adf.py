"""Atlassian Document Format (Cloud REST v3) <-> wiki markup (Data Center REST v2).

Used only when the two sides differ in flavor; Cloud -> Cloud copies ADF untouched. Covers
what issue descriptions and comments mostly hold: paragraphs, line breaks, headings, bullet
and numbered lists, code blocks, quotes, rules, bold/italic/strike/code marks, links and
mentions. Anything else degrades to its text, never to an error.
"""

from __future__ import annotations

import re
from typing import Any

MARK_WIKI = {"strong": "*", "em": "_", "strike": "-", "underline": "+", "code": "{{"}


# --- ADF -> wiki --------------------------------------------------------------------------


def adf_to_wiki(doc: Any) -> str:
    if doc is None:
        return ""
    if isinstance(doc, str):
        return doc
    blocks = [_block_to_wiki(node, depth=0, bullet="") for node in doc.get("content", [])]
    return "\n\n".join(b for b in blocks if b is not None).strip("\n")


def _inline_to_wiki(nodes: list[dict]) -> str:
    out = []
    for node in nodes or []:
        kind = node.get("type")
        if kind == "text":
            text = node.get("text", "")
            link = None
            for mark in node.get("marks", []):
                mtype = mark.get("type")
                if mtype == "link":
                    link = mark.get("attrs", {}).get("href")
                elif mtype == "code":
                    text = "{{" + text + "}}"
                elif mtype in MARK_WIKI:
                    text = MARK_WIKI[mtype] + text + MARK_WIKI[mtype]
            out.append(f"[{text}|{link}]" if link else text)
        elif kind == "hardBreak":
            out.append("\n")
        elif kind == "mention":
            attrs = node.get("attrs", {})
            out.append(f"[~accountid:{attrs.get('id', '')}]")
        elif kind in ("emoji",):
            out.append(
                node.get("attrs", {}).get("text") or node.get("attrs", {}).get("shortName", "")
            )
        elif kind == "inlineCard":
            url = node.get("attrs", {}).get("url", "")
            out.append(f"[{url}]")
        else:
            out.append(_inline_to_wiki(node.get("content", [])))
    return "".join(out)


def _block_to_wiki(node: dict, *, depth: int, bullet: str) -> str | None:
    kind = node.get("type")
    content = node.get("content", [])
    if kind == "paragraph":
        return _inline_to_wiki(content)
    if kind == "heading":
        level = node.get("attrs", {}).get("level", 1)
        return f"h{level}. {_inline_to_wiki(content)}"
    if kind in ("bulletList", "orderedList"):
        marker = bullet + ("*" if kind == "bulletList" else "#")
        lines = []
        for item in content:
            parts = []
            for child in item.get("content", []):
                if child.get("type") in ("bulletList", "orderedList"):
                    parts.append(_block_to_wiki(child, depth=depth + 1, bullet=marker))
                else:
                    parts.append(f"{marker} {_block_to_wiki(child, depth=depth, bullet=marker)}")
            lines.append("\n".join(p for p in parts if p))
        return "\n".join(lines)
    if kind == "codeBlock":
        language = node.get("attrs", {}).get("language")
        text = "".join(n.get("text", "") for n in content)
        return ("{code:" + language + "}" if language else "{code}") + f"\n{text}\n{{code}}"
    if kind == "blockquote":
        inner = "\n\n".join(
            b for b in (_block_to_wiki(c, depth=depth, bullet="") for c in content) if b
        )
        return "{quote}\n" + inner + "\n{quote}"
    if kind == "rule":
        return "----"
    if kind in ("panel", "expand", "nestedExpand", "layoutSection", "layoutColumn"):
        return "\n\n".join(
            b for b in (_block_to_wiki(c, depth=depth, bullet="") for c in content) if b
        )
    if kind == "table":
        rows = []
        for row in content:
            cells = []
            for cell in row.get("content", []):
                sep = "||" if cell.get("type") == "tableHeader" else "|"
                text = " ".join(
                    b
                    for b in (
                        _block_to_wiki(c, depth=depth, bullet="") for c in cell.get("content", [])
                    )
                    if b
                )
                cells.append(f"{sep}{text}")
            rows.append("".join(cells) + ("||" if cells and cells[-1].startswith("||") else "|"))
        return "\n".join(rows)
    return _inline_to_wiki(content) or None


# --- wiki -> ADF --------------------------------------------------------------------------

_INLINE = re.compile(
    r"\{\{(?P<code>.+?)\}\}"
    r"|\[(?P<ltext>[^|\]]+)\|(?P<lhref>[^\]]+)\]"
    r"|\[~accountid:(?P<mention>[^\]]+)\]"
    r"|(?<![\w*])\*(?P<strong>[^*\n]+?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<em>[^_\n]+?)_(?![\w_])"
    r"|(?<![\w-])-(?P<strike>[^-\s][^-\n]*?)-(?![\w-])"
    r"|(?<![\w+])\+(?P<underline>[^+\n]+?)\+(?![\w+])"
)
_MARK_FOR_GROUP = {"strong": "strong", "em": "em", "strike": "strike", "underline": "underline"}


def _text(text: str, marks: list[dict] | None = None) -> dict:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = marks
    return node


def _inline(text: str) -> list[dict]:
    nodes: list[dict] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            nodes.append({"type": "hardBreak"})
        pos = 0
        for match in _INLINE.finditer(line):
            if match.start() > pos:
                nodes.append(_text(line[pos : match.start()]))
            groups = match.groupdict()
            if groups["code"] is not None:
                nodes.append(_text(groups["code"], [{"type": "code"}]))
            elif groups["lhref"] is not None:
                nodes.append(
                    _text(groups["ltext"], [{"type": "link", "attrs": {"href": groups["lhref"]}}])
                )
            elif groups["mention"] is not None:
                nodes.append({"type": "mention", "attrs": {"id": groups["mention"]}})
            else:
                for group, mark in _MARK_FOR_GROUP.items():
                    if groups[group] is not None:
                        nodes.append(_text(groups[group], [{"type": mark}]))
                        break
            pos = match.end()
        if pos < len(line):
            nodes.append(_text(line[pos:]))
    return [n for n in nodes if n.get("type") != "text" or n["text"]]


def _list_node(lines: list[str]) -> dict:
    """Lines that all start with list markers (*, #, nested **, ##...)."""
    root_marker = lines[0].split(" ", 1)[0][0]
    node = {"type": "bulletList" if root_marker == "*" else "orderedList", "content": []}
    i = 0
    while i < len(lines):
        marker, _, rest = lines[i].partition(" ")
        item = {"type": "listItem", "content": [{"type": "paragraph", "content": _inline(rest)}]}
        i += 1
        nested = []
        while i < len(lines) and len(lines[i].split(" ", 1)[0]) > len(marker):
            nested.append(lines[i][len(marker) :])
            i += 1
        if nested:
            item["content"].append(_list_node(nested))
        node["content"].append(item)
    return node


_LIST_LINE = re.compile(r"^[*#]+ ")
_HEADING = re.compile(r"^h([1-6])\. (.*)$")


def _fenced(lines: list[str], start: int, closes) -> tuple[list[str], int]:
    """The lines after `start` up to the one `closes` accepts; the index after that line."""
    body, i = [], start + 1
    while i < len(lines) and not closes(lines[i]):
        body.append(lines[i])
        i += 1
    return body, i + 1


def _code_block(code: re.Match, lines: list[str], start: int) -> tuple[dict, int]:
    body, after = _fenced(lines, start, lambda line: line.startswith("{" + code.group(1) + "}"))
    if code.group(3):
        body.insert(0, code.group(3))
    node: dict[str, Any] = {"type": "codeBlock", "content": [_text("\n".join(body))]}
    if code.group(2):
        node["attrs"] = {"language": code.group(2)}
    if not body:
        node["content"] = []
    return node, after


def _single_line_block(line: str) -> dict | None:
    heading = _HEADING.match(line)
    if heading:
        return {
            "type": "heading",
            "attrs": {"level": int(heading.group(1))},
            "content": _inline(heading.group(2)),
        }
    if line.strip() == "----":
        return {"type": "rule"}
    return None


def wiki_to_adf(text: str | None) -> dict | None:
    if text is None:
        return None
    content: list[dict] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            content.append({"type": "paragraph", "content": _inline("\n".join(paragraph))})
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        code = re.match(r"^\{(code|noformat)(?::([^}]*))?\}(.*)$", line)
        block = None if code else _single_line_block(line)
        if code or block or line.strip() == "{quote}" or _LIST_LINE.match(line) or not line.strip():
            flush()
        if code:
            node, i = _code_block(code, lines, i)
            content.append(node)
        elif line.strip() == "{quote}":
            body, i = _fenced(lines, i, lambda line: line.strip() == "{quote}")
            inner = wiki_to_adf("\n".join(body)) or {"content": []}
            content.append({"type": "blockquote", "content": inner["content"]})
        elif block is not None:
            content.append(block)
            i += 1
        elif _LIST_LINE.match(line):
            items, root = [], line[0]
            while i < len(lines) and _LIST_LINE.match(lines[i]) and lines[i][0] == root:
                items.append(lines[i])
                i += 1
            content.append(_list_node(items))
        else:
            if line.strip():
                paragraph.append(line)
            i += 1
    flush()
    return {"type": "doc", "version": 1, "content": content}
