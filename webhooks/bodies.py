"""Reading a request body sent with `Transfer-Encoding: chunked` (no Content-Length).

Django reads a body only up to its Content-Length, so a chunked one reads as empty. WSGI
servers that decode chunks themselves (gunicorn; they set `wsgi.input_terminated`) hand us a
stream that ends where the body does. Django's development server (runserver, and the test
suite's live server) hands us its socket file capped at Content-Length (0): there we decode
the chunks from the socket file underneath (RFC 9112, section 7.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.core.handlers.wsgi import LimitedStream


class BodyTooLarge(Exception):
    pass


class UnreadableBody(Exception):
    """The server gives us no way to read a chunked body."""


class MalformedBody(Exception):
    """The chunks are not well-formed (or the body ended early)."""


def read_chunked(environ: Mapping, limit: int) -> bytes:
    """At most `limit` bytes of a chunked body; BodyTooLarge past that."""
    stream = environ.get("wsgi.input")
    if stream is None:
        raise UnreadableBody("no input stream")
    if environ.get("wsgi.input_terminated"):
        body = _read_to_end(stream.read, limit)
    elif isinstance(stream, LimitedStream) and hasattr(stream, "_readline"):
        # Django's development server: the socket file under its cap.
        body = _decode_chunks(stream._read, stream._readline, limit)
    else:
        raise UnreadableBody("the server does not decode chunked bodies")
    return body


def _read_to_end(read: Callable[[int], bytes], limit: int) -> bytes:
    parts, size = [], 0
    while True:
        part = read(min(65536, limit + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise BodyTooLarge


def _decode_chunks(
    read: Callable[[int], bytes], readline: Callable[[int], bytes], limit: int
) -> bytes:
    parts, size = [], 0
    while True:
        line = readline(1024)
        if not line.endswith(b"\n"):
            raise MalformedBody("a chunk size line is missing or too long")
        try:
            chunk = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise MalformedBody("a chunk size is not hexadecimal") from None
        if chunk < 0:
            raise MalformedBody("a negative chunk size")
        if chunk == 0:
            break
        if size + chunk > limit:
            raise BodyTooLarge
        data = b""
        while len(data) < chunk:
            more = read(chunk - len(data))
            if not more:
                raise MalformedBody("the body ended inside a chunk")
            data += more
        parts.append(data)
        size += chunk
        if read(2) not in (b"\r\n",):
            raise MalformedBody("a chunk is not followed by CRLF")
    for _ in range(100):  # trailer fields, up to the empty line
        if readline(8192) in (b"\r\n", b"\n", b""):
            break
    return b"".join(parts)
