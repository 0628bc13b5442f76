import hashlib
import hmac

from webhooks.auth import signature_valid


def test_a_signature_over_the_raw_body_is_accepted():
    body = b'{"webhookEvent": "jira:issue_updated"}'
    header = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert signature_valid(body=body, header=header, secret="hook-secret")


def test_a_signature_of_other_bytes_or_secret_is_refused():
    body = b'{"a": 1}'
    header = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert not signature_valid(body=body + b" ", header=header, secret="hook-secret")
    assert not signature_valid(body=body, header=header, secret="other-secret")
    assert not signature_valid(body=body, header=header.replace("sha256=", ""), secret="x")
