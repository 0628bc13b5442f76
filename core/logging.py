"""Event-style log lines: `event key=value ...`, with ids in structured fields.

Call sites log an event name and pass ids through `extra`; this formatter prints them,
blanks any `secret=` value (the access log of a webhook URL would otherwise show it), and
escapes control characters, so one record is one line: a newline in an issue key cannot
forge a log line. A traceback keeps its lines, each indented, so a line that starts in column
one always starts a record.
"""

import logging
import re

# Record attributes that are not the caller's structured fields (Django adds `request`).
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request",
    "server_time",
}
# A webhook URL carries its secret in the query string; access logs print URLs.
_SECRET_IN_URL = re.compile(r"(secret=)[^&\s\"']+", re.IGNORECASE)


# C0 and C1 control characters (newline, carriage return, NUL, escape, ...).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(r"\1[redacted]", text)


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape (`\\n`, `\\x00`)."""
    return _CONTROL.sub(
        lambda m: (
            _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}")
            if ord(m.group()) < 0x100
            else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


class EventFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            line += " " + " ".join(
                f"{escape_controls(str(k))}={escape_controls(str(v))}"
                for k, v in sorted(extras.items())
            )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for detail in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if detail:
                line += "".join("\n  " + escape_controls(part) for part in detail.splitlines())
        return redact(line)
