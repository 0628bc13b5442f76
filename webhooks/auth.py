"""Checks on a delivery's raw bytes, before anything is parsed or stored."""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature"


def signature_for(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(*, body: bytes, header: str, secret: str) -> bool:
    """`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time."""
    return hmac.compare_digest(signature_for(body, secret).encode(), header.strip().encode())
