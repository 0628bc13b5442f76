"""Scenario B's wire formats: the invitation text and Ed25519-signed messages."""

import base64
import json
import time

import pytest

from organizations import envelope

KEYS = envelope.generate_key_pair()


def _invitation(**overrides):
    public_key = KEYS[1]
    data = {
        "version": envelope.PROTOCOL_VERSION,
        "baseUrl": "https://sync.partner.example",
        "connectionId": "a" * 32,
        "token": "t" * 43,
        "publicKey": public_key,
        "offers": {"projects": ["OPS"], "fields": ["summary"]},
        "expiresAt": int(time.time()) + 3600,
    }
    data.update(overrides)
    return data


def _encode(data):
    return envelope.encode_invitation(data, private_key=KEYS[0])


def _without_signature(data):
    return {k: v for k, v in data.items() if k != "signature"}


def test_an_invitation_round_trips_as_one_pasteable_line():
    data = _invitation()
    text = _encode(data)
    assert "\n" not in text and "=" not in text and " " not in text
    assert _without_signature(envelope.decode_invitation(text)) == data
    assert _without_signature(envelope.decode_invitation(f"  {text}\n")) == data


def test_an_altered_invitation_or_one_signed_by_another_key_is_refused():
    data = json.loads(base64.urlsafe_b64decode(_encode(_invitation()) + "=="))
    data["baseUrl"] = "https://attacker.example"
    altered = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    with pytest.raises(envelope.EnvelopeError, match="signature"):
        envelope.decode_invitation(altered)
    other, _ = envelope.generate_key_pair()
    with pytest.raises(envelope.EnvelopeError, match="signature"):
        envelope.decode_invitation(envelope.encode_invitation(_invitation(), private_key=other))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"version": 2}, "unsupported invitation version"),
        ({"expiresAt": int(time.time()) - 1}, "expired"),
        ({"baseUrl": "ftp://x"}, "baseUrl"),
        ({"connectionId": "../../admin"}, "connectionId"),
        ({"publicKey": "bm90IGEga2V5"}, "Ed25519"),
        ({"token": "short"}, "token"),
        ({"offers": {"projects": [1], "fields": []}}, "offers.projects"),
        ({"expiresAt": "tomorrow"}, "expiresAt"),
    ],
)
def test_a_malformed_or_expired_invitation_is_refused_with_the_reason(overrides, reason):
    with pytest.raises(envelope.EnvelopeError, match=reason):
        envelope.decode_invitation(_encode(_invitation(**overrides)))


@pytest.mark.parametrize(
    "text",
    ["", "not base64!", base64.urlsafe_b64encode(b"[1, 2]").decode(), "A" * 20000, None, 42],
)
def test_anything_else_is_not_an_invitation(text):
    with pytest.raises(envelope.EnvelopeError, match="not a connection invitation"):
        envelope.decode_invitation(text)


def _signed(private_key, body, now=None):
    headers = envelope.signed_headers(private_key=private_key, body=body, now=now)
    return envelope.parse_headers(headers)


def test_a_signed_message_verifies_with_the_senders_public_key():
    private_key, public_key = envelope.generate_key_pair()
    body = json.dumps({"type": "hello"}).encode()
    signed = _signed(private_key, body)
    assert envelope.verify(public_keys=[public_key], signed=signed, body=body) == public_key


def test_another_key_another_body_or_another_message_id_fails():
    private_key, public_key = envelope.generate_key_pair()
    _, other_public = envelope.generate_key_pair()
    body = b'{"type":"hello"}'
    signed = _signed(private_key, body)
    with pytest.raises(envelope.EnvelopeError, match="bad signature"):
        envelope.verify(public_keys=[other_public], signed=signed, body=body)
    with pytest.raises(envelope.EnvelopeError, match="bad signature"):
        envelope.verify(public_keys=[public_key], signed=signed, body=body + b" ")
    moved = envelope.SignedHeaders(signed.timestamp, "b" * 32, signed.signature)
    with pytest.raises(envelope.EnvelopeError, match="bad signature"):
        envelope.verify(public_keys=[public_key], signed=moved, body=body)
    moved = envelope.SignedHeaders(signed.timestamp + 1, signed.message_id, signed.signature)
    with pytest.raises(envelope.EnvelopeError, match="bad signature"):
        envelope.verify(public_keys=[public_key], signed=moved, body=body)


def test_a_message_outside_the_five_minute_window_is_refused():
    private_key, public_key = envelope.generate_key_pair()
    body = b"{}"
    now = 1_800_000_000
    old = _signed(private_key, body, now=now - envelope.WINDOW_SECONDS - 1)
    ahead = _signed(private_key, body, now=now + envelope.WINDOW_SECONDS + 1)
    edge = _signed(private_key, body, now=now - envelope.WINDOW_SECONDS)
    for signed in (old, ahead):
        with pytest.raises(envelope.EnvelopeError, match="window"):
            envelope.verify(public_keys=[public_key], signed=signed, body=body, now=now)
    assert envelope.verify(public_keys=[public_key], signed=edge, body=body, now=now)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Sync-Timestamp": "soon", "X-Sync-Message-Id": "a" * 32, "X-Sync-Signature": "x"},
        {"X-Sync-Timestamp": "1", "X-Sync-Message-Id": "../x", "X-Sync-Signature": "x"},
        {"X-Sync-Timestamp": "1", "X-Sync-Message-Id": "a" * 32, "X-Sync-Signature": ""},
    ],
)
def test_missing_or_malformed_signing_headers_are_refused(headers):
    with pytest.raises(envelope.EnvelopeError, match="missing or malformed"):
        envelope.parse_headers(headers)


def test_the_public_key_is_derived_from_the_private_key():
    private_key, public_key = envelope.generate_key_pair()
    assert envelope.public_key_of(private_key) == public_key
    assert envelope.check_public_key(public_key) == public_key
