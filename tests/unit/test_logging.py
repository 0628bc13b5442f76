import logging

from core.logging import EventFormatter


def record(msg, *args, **extra):
    rec = logging.makeLogRecord({"msg": msg, "args": args, "levelname": "INFO", "name": "t"})
    rec.__dict__.update(extra)
    return rec


def test_ids_in_extra_are_printed_as_key_value_pairs():
    line = EventFormatter().format(record("delivery.stored", delivery=7, issue="ABC-1"))
    assert line.endswith("delivery.stored delivery=7 issue=ABC-1")


def test_secrets_in_webhook_urls_are_redacted_from_access_logs():
    line = EventFormatter().format(
        record('"%s" %s', "POST /webhooks/incoming/org-1/?secret=Zx9-abc_DEF&x=1 HTTP/1.1", 202)
    )
    assert "Zx9-abc_DEF" not in line
    assert "secret=[redacted]&x=1" in line


def test_a_newline_in_a_field_cannot_forge_a_log_line():
    forged = "ABC-1\n2026-01-01 00:00:00,000 ERROR webhooks forged.event"
    line = EventFormatter().format(record("delivery.stored", issue=forged))
    assert "\n" not in line
    assert "issue=ABC-1\\n2026-01-01" in line


def test_control_characters_in_the_message_are_escaped():
    line = EventFormatter().format(record('"%s" %s', "POST /x\r\nFAKE\x00\x1b[31m HTTP/1.1", 400))
    assert "\r" not in line and "\n" not in line and "\x00" not in line and "\x1b" not in line
    assert "/x\\r\\nFAKE\\x00\\x1b[31m" in line


def test_a_traceback_keeps_its_lines_but_every_continuation_is_indented():
    try:
        raise ValueError("bad key\nFAKE-LINE at column zero")
    except ValueError:
        import sys

        rec = record("delivery.failed", issue="A-1")
        rec.exc_info = sys.exc_info()
    lines = EventFormatter().format(rec).split("\n")
    assert lines[0].endswith("delivery.failed issue=A-1")
    assert len(lines) > 2
    assert all(line.startswith("  ") for line in lines[1:])
    assert not any(line.startswith("FAKE-LINE") for line in lines)
