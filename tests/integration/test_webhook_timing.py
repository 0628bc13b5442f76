"""An unknown organization and a wrong secret cost the same work: the same queries, the same
decryptions, the same constant-time comparisons (counted in `cryptography` and `hmac`,
underneath our code)."""

import hmac
import json
import re
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext

from organizations import services

pytestmark = pytest.mark.django_db

BODY = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"id": "1"}}).encode()


def work(client, path: str):
    """The answer, and the work done for it: (decryptions, comparisons, queries)."""
    counts = {"decrypt": 0, "compare": 0}
    decrypt, compare = Fernet._decrypt_data, hmac.compare_digest

    def counting_decrypt(self, *args, **kwargs):
        counts["decrypt"] += 1
        return decrypt(self, *args, **kwargs)

    def counting_compare(a, b):
        counts["compare"] += 1
        return compare(a, b)

    with (
        mock.patch.object(Fernet, "_decrypt_data", counting_decrypt),
        mock.patch.object(hmac, "compare_digest", counting_compare),
        CaptureQueriesContext(connection) as queries,
    ):
        response = client.post(path, data=BODY, content_type="application/json")
    # The statements, without their values.
    sql = [re.sub(r"'[^']*'", "?", q["sql"]) for q in queries.captured_queries]
    return response, counts, sql


@pytest.mark.parametrize("setup", ["plain", "rotated", "with_partner_secrets"])
def test_an_unknown_organization_and_a_wrong_secret_do_the_same_work(client, two_way_org, setup):
    org = two_way_org
    if setup == "rotated":
        org = services.organization_rotate_secret(organization=org)
    elif setup == "with_partner_secrets":
        org = services.organization_update(
            organization=org,
            data={"remote_handshake_token": "hook-secret", "remote_token": "api-token"},
        )
    wrong = work(client, f"/webhooks/incoming/{org.public_id}/?secret=x" + "y" * 42)
    unknown = work(client, "/webhooks/incoming/org-nope/?secret=x" + "y" * 42)
    assert wrong[0].status_code == unknown[0].status_code == 401
    assert wrong[0].json() == unknown[0].json()
    assert wrong[1] == unknown[1]
    assert wrong[1]["decrypt"] >= 2 and wrong[1]["compare"] >= 2
    assert wrong[2] == unknown[2]
