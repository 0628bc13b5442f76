"""Scenario B's wire formats, pure (no Django): the invitation text and signed messages.

An invitation is JSON in base64url (no padding): one pasteable line. A message between two
installs is signed with the sender's Ed25519 key over `<timestamp>.<message id>.<body>`; the
receiver refuses a bad signature, a timestamp outside the window and a message id it has seen.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PROTOCOL_VERSION = 1
# Messages older or newer than this (seconds) are refused: replay protection together with
# the message ids a receiver remembers for at least as long.
WINDOW_SECONDS = 300
MAX_INVITATION_CHARS = 16_384

HEADER_TIMESTAMP = "X-Sync-Timestamp"
HEADER_MESSAGE_ID = "X-Sync-Message-Id"
HEADER_SIGNATURE = "X-Sync-Signature"

MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CONNECTION_ID_RE = re.compile(r"^[a-f0-9]{32}$")
PROJECT_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")


class EnvelopeError(ValueError):
    """A message or invitation that must be refused; the text says why (never a secret)."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise EnvelopeError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise EnvelopeError("not base64url") from None


# --- keys --------------------------------------------------------------------------------------


def generate_key_pair() -> tuple[str, str]:
    """(private, public) Ed25519 keys as base64url of their 32 raw bytes."""
    private = Ed25519PrivateKey.generate()
    private_raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return _b64e(private_raw), public_key_of(_b64e(private_raw))


def public_key_of(private_key: str) -> str:
    private = Ed25519PrivateKey.from_private_bytes(_b64d(private_key))
    return _b64e(
        private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    )


def check_public_key(public_key: Any) -> str:
    """The key itself when it is a well-formed Ed25519 public key, else EnvelopeError."""
    try:
        raw = _b64d(public_key)
        Ed25519PublicKey.from_public_bytes(raw)
    except (EnvelopeError, ValueError):
        raise EnvelopeError("not an Ed25519 public key") from None
    return public_key


# --- signed messages ---------------------------------------------------------------------------


def _signed_bytes(timestamp: int, message_id: str, body: bytes) -> bytes:
    return f"{timestamp}.{message_id}.".encode() + body


def new_message_id() -> str:
    return uuid.uuid4().hex


def sign(*, private_key: str, timestamp: int, message_id: str, body: bytes) -> str:
    private = Ed25519PrivateKey.from_private_bytes(_b64d(private_key))
    return _b64e(private.sign(_signed_bytes(timestamp, message_id, body)))


def signed_headers(
    *, private_key: str, body: bytes, now: float | None = None, message_id: str = ""
) -> dict[str, str]:
    """The three headers of a signed message carrying `body` (a message sent again keeps its
    `message_id`, so the receiver knows it already has it)."""
    timestamp = int(now if now is not None else time.time())
    message_id = message_id or new_message_id()
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_MESSAGE_ID: message_id,
        HEADER_SIGNATURE: sign(
            private_key=private_key, timestamp=timestamp, message_id=message_id, body=body
        ),
    }


@dataclass(frozen=True)
class SignedHeaders:
    timestamp: int
    message_id: str
    signature: str


def parse_headers(headers: Any) -> SignedHeaders:
    """The signing headers of a request (any mapping with `.get`), checked for shape only."""
    timestamp = headers.get(HEADER_TIMESTAMP) or ""
    message_id = headers.get(HEADER_MESSAGE_ID) or ""
    signature = headers.get(HEADER_SIGNATURE) or ""
    if not re.fullmatch(r"\d{1,12}", timestamp):
        raise EnvelopeError(f"missing or malformed {HEADER_TIMESTAMP}")
    if not MESSAGE_ID_RE.fullmatch(message_id):
        raise EnvelopeError(f"missing or malformed {HEADER_MESSAGE_ID}")
    if not signature or len(signature) > 200:
        raise EnvelopeError(f"missing or malformed {HEADER_SIGNATURE}")
    return SignedHeaders(int(timestamp), message_id, signature)


def verify(
    *,
    public_keys: list[str],
    signed: SignedHeaders,
    body: bytes,
    now: float | None = None,
    window: int = WINDOW_SECONDS,
) -> str:
    """The public key (of `public_keys`) that signed the message; EnvelopeError when none did
    or the timestamp is outside the window. The replay check (message ids) is the caller's."""
    now = time.time() if now is None else now
    if abs(now - signed.timestamp) > window:
        raise EnvelopeError("timestamp outside the allowed window")
    try:
        signature = _b64d(signed.signature)
    except EnvelopeError:
        raise EnvelopeError("bad signature") from None
    data = _signed_bytes(signed.timestamp, signed.message_id, body)
    for public_key in public_keys:
        if not public_key:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(_b64d(public_key)).verify(signature, data)
        except (InvalidSignature, ValueError, EnvelopeError):
            continue
        return public_key
    raise EnvelopeError("bad signature")


# --- invitations -------------------------------------------------------------------------------


def _invitation_bytes(invitation: dict[str, Any]) -> bytes:
    fields = {k: v for k, v in invitation.items() if k != "signature"}
    return b"invitation." + json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


def encode_invitation(invitation: dict[str, Any], *, private_key: str) -> str:
    """The invitation as one pasteable line, signed by the inviter's key (whose public half
    it carries): a text altered or cut short in transit is refused, not half-trusted."""
    private = Ed25519PrivateKey.from_private_bytes(_b64d(private_key))
    signed = {**invitation, "signature": _b64e(private.sign(_invitation_bytes(invitation)))}
    return _b64e(json.dumps(signed, separators=(",", ":"), sort_keys=True).encode())


def _str(data: dict, key: str, *, max_length: int = 2048) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise EnvelopeError(f"invitation field '{key}' is missing or malformed")
    return value


def decode_invitation(text: Any, *, now: float | None = None) -> dict[str, Any]:
    """The invitation's fields, checked for format, version and expiry (EnvelopeError)."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_INVITATION_CHARS:
        raise EnvelopeError("not a connection invitation")
    try:
        data = json.loads(_b64d(text.strip()))
    except (EnvelopeError, ValueError, UnicodeDecodeError):
        raise EnvelopeError("not a connection invitation") from None
    if not isinstance(data, dict):
        raise EnvelopeError("not a connection invitation")
    if data.get("version") != PROTOCOL_VERSION:
        raise EnvelopeError(
            f"unsupported invitation version {data.get('version')!r} "
            f"(this install speaks {PROTOCOL_VERSION})"
        )
    base_url = _str(data, "baseUrl")
    if not base_url.startswith(("http://", "https://")):
        raise EnvelopeError("invitation field 'baseUrl' is not an http(s) URL")
    if not CONNECTION_ID_RE.fullmatch(_str(data, "connectionId")):
        raise EnvelopeError("invitation field 'connectionId' is malformed")
    if len(_str(data, "token")) < 40:
        raise EnvelopeError("invitation field 'token' is malformed")
    public_key = check_public_key(_str(data, "publicKey"))
    try:
        Ed25519PublicKey.from_public_bytes(_b64d(public_key)).verify(
            _b64d(_str(data, "signature", max_length=200)), _invitation_bytes(data)
        )
    except (InvalidSignature, ValueError, EnvelopeError):
        raise EnvelopeError(
            "the invitation's signature does not match: it was altered or cut short"
        ) from None
    expires_at = data.get("expiresAt")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        raise EnvelopeError("invitation field 'expiresAt' is missing or malformed")
    if expires_at <= (time.time() if now is None else now):
        raise EnvelopeError("the invitation has expired")
    offers = data.get("offers")
    if not isinstance(offers, dict):
        raise EnvelopeError("invitation field 'offers' is missing or malformed")
    for key in ("projects", "fields"):
        values = offers.get(key)
        if not isinstance(values, list) or not all(
            isinstance(v, str) and 0 < len(v) <= 255 for v in values
        ):
            raise EnvelopeError(f"invitation field 'offers.{key}' is malformed")
    return data
