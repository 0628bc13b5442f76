"""gunicorn's access log, made safe: `?secret=` values blanked and control characters escaped
in every atom (request line, path, query, headers), as `EventFormatter` does for our own
lines. `syncapp/gunicorn.conf.py` installs it (`logger_class`)."""

from gunicorn.glogging import Logger

from .logging import escape_controls, redact


class SafeAccessLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        return {
            key: redact(escape_controls(value)) if isinstance(value, str) else value
            for key, value in super().atoms(resp, req, environ, request_time).items()
        }
