"""Event-style log lines: `event key=value ...`, with ids in structured fields.

Call sites log an event name and pass ids through `extra`; this formatter prints them, and
blanks any `secret=` value (the access log of a webhook URL would otherwise show it).
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


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(r"\1[redacted]", text)


class EventFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return redact(line)
