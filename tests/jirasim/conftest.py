import pytest

from jirasim.testing import WebhookReceiver, running_sim

ALL_EVENTS = [
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
]


@pytest.fixture(params=["cloud", "datacenter"])
def flavor(request):
    return request.param


@pytest.fixture
def sim(flavor):
    with running_sim(
        flavor=flavor,
        projects=["ENG:Engineering", "OPS:Operations"],
        users=["admin@example.com:secret-token", "dev@example.com:dev-token"],
        webhook_retry_base=0.05,
        webhook_timeout=1.0,
    ) as s:
        yield s


@pytest.fixture
def cloud():
    with running_sim(
        flavor="cloud", projects=["ENG:Engineering"], webhook_retry_base=0.05, webhook_timeout=1.0
    ) as s:
        yield s


@pytest.fixture
def dc():
    with running_sim(
        flavor="datacenter",
        projects=["ENG:Engineering"],
        webhook_retry_base=0.05,
        webhook_timeout=1.0,
    ) as s:
        yield s


@pytest.fixture
def receiver():
    with WebhookReceiver() as r:
        yield r
