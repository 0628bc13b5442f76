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
