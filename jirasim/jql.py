"""A small JQL subset: parse to a tree, then evaluate it against issues.

Supported: ``field op value`` clauses with ``= != > >= < <= ~ !~ IN, NOT IN, IS, IS NOT``,
``AND``/``OR``/``NOT``, parentheses, ``EMPTY``/``NULL``, functions ``currentUser()`` and
``now()``, relative dates (``-5m``, ``-2h``, ``-1d``, ``-1w``) and ``ORDER BY f [ASC|DESC], ...``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


class JqlError(ValueError):
    """A JQL string Jira would reject; the message is Jira's wording where known."""


_TOKEN_RE = re.compile(
    r"\s*(?:"
    r"(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<op>!=|>=|<=|!~|=|>|<|~)"
    r"|(?P<punct>[(),])"
    r"|(?P<word>[^\s=!<>~(),\"']+)"
    r")"
)


@dataclass
class Tok:
    kind: str
    value: str
    quoted: bool = False


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{text[pos]}' is reserved.")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            toks.append(Tok("value", re.sub(r"\\(.)", r"\1", raw), quoted=True))
        elif m.group("op") is not None:
            toks.append(Tok("op", m.group("op")))
        elif m.group("punct") is not None:
            toks.append(Tok(m.group("punct"), m.group("punct")))
        elif m.group("word") is not None:
            toks.append(Tok("value", m.group("word")))
    return toks


@dataclass
class Clause:
    field: str
    op: str
    values: list[Any]


@dataclass
class BoolOp:
    op: str  # and / or / not
    children: list[Any]


@dataclass
class Query:
    where: Any = None
    order: list[tuple[str, str]] = field(default_factory=list)


class Func:
    def __init__(self, name: str):
        self.name = name.lower()

    def __repr__(self) -> str:
        return f"{self.name}()"


EMPTY = object()


class _Parser:
    def __init__(self, toks: list[Tok]):
        self.toks = toks
        self.i = 0

    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def kw(self, word: str, offset: int = 0) -> bool:
        t = self.peek(offset)
        return t is not None and t.kind == "value" and not t.quoted and t.value.lower() == word

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise JqlError("Error in the JQL Query: Expecting more input at the end of the query.")
        self.i += 1
        return t

    def parse(self) -> Query:
        q = Query()
        if self.peek() is not None and not (self.kw("order") and self.kw("by", 1)):
            q.where = self.parse_or()
        if self.kw("order") and self.kw("by", 1):
            self.i += 2
            while True:
                f = self.take().value.lower()
                direction = "asc" if f not in ("created", "updated") else "asc"
                if self.kw("asc") or self.kw("desc"):
                    direction = self.take().value.lower()
                q.order.append((f, direction))
                if self.peek() is not None and self.peek().kind == ",":
                    self.i += 1
                    continue
                break
        if self.peek() is not None:
            t = self.peek()
            raise JqlError(
                f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{t.value}'."
            )
        return q

    def parse_or(self):
        children = [self.parse_and()]
        while self.kw("or"):
            self.i += 1
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else BoolOp("or", children)

    def parse_and(self):
        children = [self.parse_not()]
        while self.kw("and"):
            self.i += 1
            children.append(self.parse_not())
        return children[0] if len(children) == 1 else BoolOp("and", children)

    def parse_not(self):
        if self.kw("not"):
            self.i += 1
            return BoolOp("not", [self.parse_not()])
        t = self.peek()
        if t is not None and t.kind == "(":
            self.i += 1
            inner = self.parse_or()
            t2 = self.take()
            if t2.kind != ")":
                raise JqlError("Error in the JQL Query: Expecting ')' before the end of the query.")
            return inner
        return self.parse_clause()

    def parse_value(self):
        t = self.take()
        if t.kind != "value":
            raise JqlError(f"Error in the JQL Query: Expecting a value but got '{t.value}'.")
        nxt = self.peek()
        if not t.quoted and nxt is not None and nxt.kind == "(":
            self.i += 1
            while self.peek() is not None and self.peek().kind != ")":
                self.i += 1
            self.take()
            return Func(t.value)
        if not t.quoted and t.value.lower() in ("empty", "null"):
            return EMPTY
        return t.value

    def parse_clause(self) -> Clause:
        ftok = self.take()
        if ftok.kind != "value":
            raise JqlError(
                f"Error in the JQL Query: Expecting a field name but got '{ftok.value}'."
            )
        fname = ftok.value
        # cf[10010] arrives as one word
        if self.kw("not") and self.kw("in", 1):
            self.i += 2
            return Clause(fname, "not in", self.parse_list())
        if self.kw("in"):
            self.i += 1
            return Clause(fname, "in", self.parse_list())
        if self.kw("is"):
            self.i += 1
            if self.kw("not"):
                self.i += 1
                return Clause(fname, "is not", [self.parse_value()])
            return Clause(fname, "is", [self.parse_value()])
        t = self.take()
        if t.kind != "op":
            raise JqlError(
                f"Error in the JQL Query: Expecting operator but got '{t.value}'. The valid "
                "operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', "
                "'IS' and 'IS NOT'."
            )
        return Clause(fname, t.value, [self.parse_value()])

    def parse_list(self) -> list:
        t = self.take()
        if t.kind != "(":
            raise JqlError("Error in the JQL Query: Expecting '(' but got '" + t.value + "'.")
        values = []
        while True:
            values.append(self.parse_value())
            t = self.take()
            if t.kind == ")":
                return values
            if t.kind != ",":
                raise JqlError("Error in the JQL Query: Expecting ',' or ')' but got " + t.value)


def parse(text: str | None) -> Query:
    if not text or not text.strip():
        return Query()
    return _Parser(tokenize(text)).parse()


_REL_RE = re.compile(r"^([+-]?)(\d+)([wdhm])$", re.I)
_UNIT = {"w": 604800, "d": 86400, "h": 3600, "m": 60}


def parse_date(value: Any, now: dt.datetime) -> dt.datetime:
    if isinstance(value, Func):
        if value.name in ("now",):
            return now
        if value.name in ("startofday",):
            return now.replace(hour=0, minute=0, second=0, microsecond=0)
        raise JqlError(f"Error in the JQL Query: Unsupported function '{value.name}'.")
    s = str(value).strip()
    m = _REL_RE.match(s)
    if m:
        secs = int(m.group(2)) * _UNIT[m.group(3).lower()]
        return (
            now - dt.timedelta(seconds=secs)
            if m.group(1) == "-"
            else now + dt.timedelta(seconds=secs)
        )
    if s.isdigit() and len(s) > 8:
        return dt.datetime.fromtimestamp(int(s) / 1000, tz=dt.UTC)
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(s, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{s}' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
        "format e.g. '-5d', '4w 2d'."
    )


class Context(Protocol):
    def field_values(self, issue: dict, fname: str) -> tuple[str, list[Any]]:
        """Return (kind, values) for a field: kind is 'text', 'date', 'number' or 'id'."""

    def resolve_value(self, fname: str, value: Any) -> list[Any]:
        """Map a JQL literal to comparable values (raises JqlError for unknown ones)."""

    def now(self) -> dt.datetime: ...


def evaluate(node: Any, issue: dict, ctx: Context) -> bool:
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(c, issue, ctx) for c in node.children)
        if node.op == "or":
            return any(evaluate(c, issue, ctx) for c in node.children)
        return not evaluate(node.children[0], issue, ctx)
    kind, actual = ctx.field_values(issue, node.field)
    op = node.op
    if op in ("is", "is not"):
        empty = not actual
        return empty if op == "is" else not empty
    if kind == "date":
        if not actual:
            return False
        target = parse_date(node.values[0], ctx.now())
        a = actual[0]
        return {
            "=": a == target,
            "!=": a != target,
            ">": a > target,
            ">=": a >= target,
            "<": a < target,
            "<=": a <= target,
        }.get(op, False)
    if op in ("~", "!~"):
        needle = str(node.values[0]).lower().strip("*")
        hit = any(needle in str(a).lower() for a in actual)
        return hit if op == "~" else not hit
    wanted: list[Any] = []
    for v in node.values:
        if v is EMPTY:
            wanted.append(EMPTY)
        else:
            wanted.extend(ctx.resolve_value(node.field, v))
    if kind == "number" and op in (">", ">=", "<", "<="):
        nums = [float(a) for a in actual if a is not None]
        t = float(wanted[0])
        return any({">": a > t, ">=": a >= t, "<": a < t, "<=": a <= t}[op] for a in nums)
    if kind == "id" and op in (">", ">=", "<", "<="):
        return any(
            {">": a > t, ">=": a >= t, "<": a < t, "<=": a <= t}[op]
            for a in actual
            for t in wanted
            if t is not EMPTY
        )
    hit = any((w is EMPTY and not actual) or (w in actual) for w in wanted)
    if op in ("=", "in"):
        return hit
    if op in ("!=", "not in"):
        # Jira: != never matches issues where the field is empty.
        return bool(actual) and not hit
    raise JqlError(f"Error in the JQL Query: The operator '{op}' is not supported here.")
