"""The streamed upload body: a multipart form of one `file` part, read piece by piece."""

import io
from email.parser import BytesParser
from email.policy import HTTP

from jiraapi.client import MultipartFile


class CountingReader(io.BytesIO):
    """A file that records the size of every read asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, n=-1):
        self.asked.append(n)
        return super().read(n)


def _parse(content_type: str, body: bytes):
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    return BytesParser(policy=HTTP).parsebytes(head + body)


def test_the_body_is_a_valid_multipart_form_with_the_whole_file():
    data = bytes(range(256)) * 300
    body = MultipartFile('résumé "final".pdf', io.BytesIO(data), len(data))
    raw = body.read()
    assert len(raw) == len(body)
    (part,) = list(_parse(body.content_type, raw).iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    # Named as browsers and requests name it (HTML5 form encoding: a quote is %22).
    assert part.get_filename() == "résumé %22final%22.pdf"
    assert part.get_payload(decode=True) == data


def test_the_file_is_read_in_pieces_no_larger_than_asked():
    data = b"x" * 1_000_000
    source = CountingReader(data)
    body = MultipartFile("big.bin", source, len(data))
    pieces = []
    while chunk := body.read(8192):
        assert len(chunk) <= 8192
        pieces.append(chunk)
    assert b"".join(pieces).count(b"x") == len(data)
    assert max(n for n in source.asked) <= 8192


def test_a_rewind_sends_the_same_body_again():
    body = MultipartFile("a.txt", io.BytesIO(b"abc"), 3)
    first = body.read()
    body.seek(0)
    assert body.tell() == 0
    assert body.read() == first
