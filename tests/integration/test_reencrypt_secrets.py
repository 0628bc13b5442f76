"""`manage.py reencrypt_secrets`: every stored secret re-encrypted with the first key."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from organizations import services
from organizations.models import Organization

pytestmark = pytest.mark.django_db

OLD, NEW = "old-field-encryption-key-0123456789", "new-field-encryption-key-9876543210"
COLUMNS = ("incoming_secret", "previous_incoming_secrets", "remote_token", "remote_handshake_token")


def raw(org: Organization) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS)} FROM organizations_organization WHERE id = %s",
            [org.pk],
        )
        return dict(zip(COLUMNS, cursor.fetchone(), strict=True))


def reencrypt() -> str:
    out = StringIO()
    call_command("reencrypt_secrets", stdout=out)
    return out.getvalue()


def test_every_secret_is_reencrypted_with_the_first_key_once(settings, make_org):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    org = make_org(
        name="Partner",
        sync_direction="bidirectional",
        remote_token="tok",
        remote_handshake_token="hook",
    )
    org = services.organization_rotate_secret(organization=org)
    make_org(name="Push only")  # its incoming secret only; unset secrets stay empty
    before = raw(org)
    incoming = org.incoming_secret

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    out = reencrypt()
    assert "re-encrypted 5" in out and "already current 0" in out
    after = raw(org)
    assert all(after[c] != before[c] and after[c].startswith("enc1:") for c in COLUMNS)

    # Idempotent: a second run changes nothing.
    out = reencrypt()
    assert "re-encrypted 0" in out and "already current 5" in out
    assert raw(org) == after

    # The old key can go: everything reads with the new key alone.
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    org = Organization.objects.get(pk=org.pk)
    assert org.incoming_secret == incoming
    assert org.remote_token == "tok" and org.remote_handshake_token == "hook"


def test_a_secret_no_key_can_read_stops_the_command_and_changes_nothing(settings, make_org):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    org = make_org(name="Partner", remote_token="tok")
    before = raw(org)
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CommandError) as excinfo:
        reencrypt()
    assert "cannot decrypt" in str(excinfo.value)
    assert "tok" not in str(excinfo.value)
    assert raw(org) == before
