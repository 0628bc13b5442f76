import pytest
from cryptography.fernet import Fernet

from core import crypto


def test_a_secret_round_trips_and_is_not_stored_in_clear(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["a passphrase of some length"]
    stored = crypto.encrypt("s3cret-value")
    assert stored.startswith(crypto.PREFIX)
    assert "s3cret-value" not in stored
    assert crypto.decrypt(stored) == "s3cret-value"


def test_encrypting_twice_gives_different_ciphertexts(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["k1"]
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_a_rotated_key_still_decrypts_old_values(settings):
    old_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    stored = crypto.encrypt("value")
    settings.FIELD_ENCRYPTION_KEYS = ["a-new-key", old_key]
    assert crypto.decrypt(stored) == "value"
    assert crypto.decrypt(crypto.encrypt("value")) == "value"


def test_a_wrong_key_fails_without_echoing_the_value(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["key-one"]
    stored = crypto.encrypt("top-secret")
    settings.FIELD_ENCRYPTION_KEYS = ["key-two"]
    with pytest.raises(ValueError) as excinfo:
        crypto.decrypt(stored)
    assert "top-secret" not in str(excinfo.value)
    assert stored not in str(excinfo.value)


def test_generated_secrets_have_256_bits_and_are_url_safe():
    secrets = {crypto.generate_secret() for _ in range(1000)}
    assert len(secrets) == 1000
    for secret in secrets:
        # 32 random bytes in unpadded URL-safe base64 are 43 characters.
        assert len(secret) >= 43
        assert set(secret) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
