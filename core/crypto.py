"""Encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`).

FIELD_ENCRYPTION_KEYS holds one or more keys; the first encrypts and all of them decrypt, so
a key can be rotated by putting the new one first. A key may be a Fernet key or any
passphrase (it is then stretched with SHA-256 into one).
"""

import base64
import hashlib
import secrets
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

# Stored values carry this prefix, so an encrypted column is recognisable in a raw dump.
PREFIX = "enc1:"


def _fernet_for(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except ValueError:
        digest = hashlib.sha256(key.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet_for(k) for k in keys])


def _cipher() -> MultiFernet:
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return PREFIX + _cipher().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("value is not encrypted")
    try:
        return _cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        # Never include the value itself: it is a secret.
        raise ValueError("cannot decrypt a stored secret: wrong FIELD_ENCRYPTION_KEYS?") from None


def is_current(stored: str) -> bool:
    """Whether a stored value is encrypted with the first (current) key."""
    try:
        _fernet_for(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken:
        return False
    return stored.startswith(PREFIX)


def reencrypt(stored: str) -> str:
    """The same secret encrypted with the first key (read with any key)."""
    if not stored.startswith(PREFIX):
        raise ValueError("value is not encrypted")
    try:
        token = _cipher().rotate(stored[len(PREFIX) :].encode())
    except InvalidToken:
        raise ValueError("cannot decrypt a stored secret: wrong FIELD_ENCRYPTION_KEYS?") from None
    return PREFIX + token.decode()


def generate_secret() -> str:
    """A URL-safe secret with 256 bits from the operating system's CSPRNG."""
    return secrets.token_urlsafe(32)
