"""Both webhook endpoints under generated bodies, headers and query strings (hypothesis):
never a 5xx, nothing stored on a refusal, and an accepted delivery stored as sent."""

import hashlib
import hmac
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jiraapi.events import WEBHOOK_EVENTS
from organizations import services
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

LOCAL_SECRET = "fuzz-local-secret"
HOOK_SECRET = "fuzz-hook-secret"
FUZZ = settings(
    max_examples=120,
    database=None,  # no example files in the repository
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

nasty_text = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=30
) | st.sampled_from(["", "REMOTE_PROJ-1", "A\u0000B", "X\nY", "\ud800", "\u202e", "%00", "a" * 300])
json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | nasty_text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=20,
)
jira_like = st.fixed_dictionaries(
    {
        "webhookEvent": st.sampled_from(WEBHOOK_EVENTS) | nasty_text,
        "timestamp": st.integers() | st.floats() | nasty_text,
        "issue": st.fixed_dictionaries(
            {
                "id": st.sampled_from(["10001", "2"]) | nasty_text | st.integers(),
                "key": st.sampled_from(["REMOTE_PROJ-1", "LOC-1"]) | nasty_text,
                "fields": st.fixed_dictionaries(
                    {
                        "project": st.fixed_dictionaries(
                            {"key": st.just("REMOTE_PROJ") | nasty_text}
                        )
                    },
                    optional={"summary": nasty_text, "x": json_value},
                ),
            }
        )
        | json_value,
    },
    optional={"comment": json_value, "changelog": json_value, "user": json_value},
)


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["jira", "json", "bytes", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(1, 5000))
        return draw(st.sampled_from([b"[", b'{"a":'])) * depth
    value = draw(jira_like if kind == "jira" else json_value)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


header_names = st.sampled_from(
    [
        "X-Hub-Signature",
        "X-Atlassian-Webhook-Identifier",
        "X-Atlassian-Webhook-Retry",
        "X-Atlassian-Webhook-Flow",
        "User-Agent",
        "X-Forwarded-For",
        "Transfer-Encoding",
    ]
)
header_values = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=40)


@st.composite
def requests_(draw, good_secret: str):
    body = draw(bodies())
    # Mostly the right secret and signature, so that most bodies get past authentication.
    secret = good_secret if draw(st.integers(0, 9)) < 7 else draw(st.just("") | nasty_text)
    extra_query = draw(st.dictionaries(nasty_text, nasty_text, max_size=2))
    headers = draw(st.dictionaries(header_names, header_values, max_size=3))
    signature = draw(st.sampled_from(["none", "valid", "valid", "valid", "other"]))
    if signature == "valid":
        headers["X-Hub-Signature"] = (
            "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        )
    elif signature == "none":
        headers.pop("X-Hub-Signature", None)
    content_type = draw(
        st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"])
    )
    return body, {"secret": secret, **extra_query}, headers, content_type


def nul_header_request(secret: str):
    """What the fuzzer found once: a NUL in the identifier header (a 500 on main)."""
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "A-1"}}).encode()
    headers = {"X-Atlassian-Webhook-Identifier": "a\x00b", "User-Agent": "\x00"}
    return body, {"secret": secret}, headers, "application/json"


def check(client, path: str, request, source: str) -> None:
    body, query, headers, content_type = request
    before = WebhookDelivery.objects.count()
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = client.generic(
        "POST",
        path + "?" + "&".join(f"{_q(k)}={_q(v)}" for k, v in query.items()),
        data=body,
        content_type=content_type,
        **meta,
    )
    assert response.status_code < 500, response.content[:500]
    after = WebhookDelivery.objects.count()
    if response.status_code >= 400:
        assert after == before, "a refused delivery was stored"
        return
    answer = response.json()
    delivery = WebhookDelivery.objects.get(pk=answer["delivery"])
    assert delivery.source == source
    if answer["duplicate"]:
        assert after == before
    else:
        assert after == before + 1
        assert delivery.body.encode("utf-8", "surrogatepass") == body, "stored differently"


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture(autouse=True)
def fuzz_settings(settings):
    settings.LOCAL_WEBHOOK_SECRET = LOCAL_SECRET
    settings.WEBHOOK_AUTH_FAILURE_LIMIT = 0  # the throttle has tests of its own
    settings.WEBHOOK_MAX_BODY_BYTES = 64 * 1024


def test_the_partner_endpoint_never_fails_and_never_loses_or_invents_a_delivery(
    client, two_way_org
):
    org = services.organization_update(
        organization=two_way_org, data={"remote_handshake_token": HOOK_SECRET}
    )
    path = f"/webhooks/incoming/{org.public_id}/"

    @FUZZ
    @given(request=requests_(org.incoming_secret))
    @example(request=nul_header_request(org.incoming_secret))
    def run(request):
        check(client, path, request, "partner")

    run()


def test_the_local_endpoint_never_fails_and_never_loses_or_invents_a_delivery(client):
    @FUZZ
    @given(request=requests_(LOCAL_SECRET))
    @example(request=nul_header_request(LOCAL_SECRET))
    def run(request):
        check(client, "/webhooks/local/", request, "local")

    run()


@FUZZ
@given(org_id=nasty_text, secret=nasty_text)
@example(org_id="\x00", secret="")
def test_any_organization_id_and_secret_is_refused_cleanly(client, org_id, secret):
    from urllib.parse import quote

    path = f"/webhooks/incoming/{quote(org_id.encode('utf-8', 'surrogatepass'), safe='') or 'x'}/"
    response = client.post(
        path + f"?secret={_q(secret)}", data=b"{}", content_type="application/json"
    )
    assert response.status_code in (401, 404)
    assert WebhookDelivery.objects.count() == 0
