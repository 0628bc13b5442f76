"""The embedded default's broker (syncapp/broker.py): a worker never reads half a message."""

import threading
from queue import Empty

from kombu import Connection

from syncapp.broker import Transport


def test_a_reader_polling_while_large_messages_are_written_gets_each_one_whole(tmp_path):
    """kombu's own filesystem transport lets a polling reader take a message file before it
    is written (an empty or cut payload: the worker stops); here every message arrives whole."""
    options = {"data_folder_in": tmp_path, "data_folder_out": tmp_path, "store_processed": False}
    count, body = 150, "x" * 1_000_000
    received: list[dict] = []
    errors: list[Exception] = []

    def write() -> None:
        with Connection(transport=Transport, transport_options=options) as connection:
            for i in range(count):
                connection.default_channel._put("q", {"i": i, "body": body})

    writer = threading.Thread(target=write)
    writer.start()
    with Connection(transport=Transport, transport_options=options) as connection:
        channel = connection.default_channel
        while len(received) + len(errors) < count and (writer.is_alive() or len(received) < count):
            try:
                received.append(channel._get("q"))
            except Empty:
                if not writer.is_alive() and not list(tmp_path.glob("*.msg")):
                    break
            except ValueError as exc:  # a cut JSON payload
                errors.append(exc)
    writer.join()
    assert errors == []
    assert sorted(m["i"] for m in received) == list(range(count))
    assert all(m["body"] == body for m in received)
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
