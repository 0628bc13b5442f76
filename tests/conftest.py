import os
import uuid

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from organizations import services
from organizations.models import Organization

# The service's own processes started by tests (workers, `manage.py`) run on the public
# development keys with DEBUG off: allow it, as `make test` does.
os.environ.setdefault("ALLOW_DEV_KEYS", "true")


def pytest_sessionstart(session):
    """The counters of earlier sessions' processes (prometheus_client's multiprocess files)
    go, as `make run` empties them; a test reads differences anyway."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller did, before its workers started
    from django.conf import settings

    for stale in settings.METRICS_DIR.glob("*.db"):
        stale.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _local_jira_sites_allowed(settings):
    """The simulators live on 127.0.0.1 over plain http; the product default is strict."""
    settings.JIRA_ALLOW_HTTP = True
    settings.JIRA_ALLOWED_HOSTS = ["127.0.0.1", "localhost", "::1"]


@pytest.fixture(autouse=True)
def _no_cached_credentials():
    """Each test starts with no partner credentials kept by this process from an earlier
    test's deliveries (`webhooks.auth.incoming_credentials_cached`)."""
    from webhooks.auth import incoming_credentials_forget

    incoming_credentials_forget()


@pytest.fixture(autouse=True)
def _no_blocks_remembered():
    """Each test starts with no memory of blocks this process wrote in an earlier test (whose
    rows were rolled back): `webhooks.blocks`."""
    from webhooks.blocks import auth_blocks_forget

    auth_blocks_forget()


@pytest.fixture(autouse=True)
def _fresh_project_cache():
    """Each test starts without projects or version refusals cached by an earlier test (a
    new simulator may get an earlier one's port)."""
    from sync.versions import versions_forget

    versions_forget()


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="root-pass-123")


@pytest.fixture
def api(superuser) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def grant(user, *codenames: str):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    # Permissions are cached on the instance.
    for attr in ("_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(attr, None)
    return user


@pytest.fixture
def make_org():
    def make(**fields) -> Organization:
        fields.setdefault("name", "Acme")
        name = fields.pop("name")
        return services.organization_create(name=name, **fields)

    return make


@pytest.fixture
def two_way_org(make_org) -> Organization:
    org = make_org(name="Partner", public_id="org-123", sync_direction="bidirectional")
    services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key="REMOTE_PROJ"
    )
    return org


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Each test counts in its own cache keys: no failed-authentication count (API, webhooks)
    carries across tests. Not `cache.clear()`: the cache is the test broker's Redis database,
    which clearing would empty of the workers' queues."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
