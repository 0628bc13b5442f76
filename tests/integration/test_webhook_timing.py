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


def test_after_genuine_deliveries_a_wrong_secret_still_costs_what_an_unknown_id_does(
    client, two_way_org
):
    """Whatever a web process kept from the partner's accepted deliveries, a guess against a
    real organization and one against an id nobody has do the same work, again and again."""
    org = two_way_org
    right = f"/webhooks/incoming/{org.public_id}/?secret={org.incoming_secret}"
    for n in range(3):
        accepted = client.post(
            right,
            data=BODY,
            content_type="application/json",
            HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=f"genuine-{n}",
        )
        assert accepted.status_code in (200, 202)
    for _ in range(3):
        wrong = work(client, f"/webhooks/incoming/{org.public_id}/?secret=x" + "y" * 42)
        unknown = work(client, "/webhooks/incoming/org-nope-2/?secret=x" + "y" * 42)
        assert wrong[0].status_code == unknown[0].status_code == 401
        assert wrong[0].content == unknown[0].content
        assert wrong[1] == unknown[1]
        assert wrong[2] == unknown[2]


def test_a_throttled_client_gets_the_same_answer_for_the_same_work_right_secret_or_not(
    client, settings, two_way_org
):
    """Once throttled, the secret is not looked at: no query, no decryption, no comparison
    of it, and the same 429 whether it was right or wrong (no oracle for the guesser)."""
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 3
    org = two_way_org
    wrong_path = f"/webhooks/incoming/{org.public_id}/?secret=x" + "y" * 42
    right_path = f"/webhooks/incoming/{org.public_id}/?secret={org.incoming_secret}"
    for _ in range(3):
        assert work(client, wrong_path)[0].status_code == 401
    wrong, right = work(client, wrong_path), work(client, right_path)
    assert wrong[0].status_code == right[0].status_code == 429
    assert wrong[0].content == right[0].content
    assert wrong[0]["Retry-After"] and right[0]["Retry-After"]
    assert wrong[1] == right[1] == {"decrypt": 0, "compare": 0}
    assert wrong[2] == right[2] == []
