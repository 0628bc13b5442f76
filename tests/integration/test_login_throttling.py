"""Failed logins are throttled: the admin login (django-axes) and the API's HTTP Basic and
token authentication (a DRF throttle), over real HTTP (issue 11)."""

import re

import pytest
import requests
from django.conf import settings

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "root-pass-123"


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password=PASSWORD)


def admin_login(base: str, password: str, username: str = "root") -> requests.Response:
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/admin/login/"},
        allow_redirects=False,
        timeout=10,
    )


def test_the_admin_login_locks_out_after_repeated_failures(live_server, root):
    assert admin_login(live_server.url, PASSWORD).status_code == 302  # works before
    for _ in range(getattr(settings, "AXES_FAILURE_LIMIT", 5) - 1):
        response = admin_login(live_server.url, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    response = admin_login(live_server.url, "wrong-password")
    assert response.status_code == 429
    # Locked out: even the right password is refused for the cool-off time.
    assert admin_login(live_server.url, PASSWORD).status_code == 429
    assert PASSWORD not in response.text


def test_the_api_throttles_failed_basic_authentication(live_server, root):
    url = f"{live_server.url}/api/organizations/"
    assert requests.get(url, auth=("root", PASSWORD), timeout=10).status_code == 200
    limit = getattr(settings, "API_AUTH_FAILURE_LIMIT", 10)
    for _ in range(limit):
        assert requests.get(url, auth=("root", "wrong"), timeout=10).status_code == 401
    refused = requests.get(url, auth=("root", "wrong"), timeout=10)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    # The right password too, until the window passes: guessing gains nothing.
    assert requests.get(url, auth=("root", PASSWORD), timeout=10).status_code == 429


def test_the_api_throttles_failed_token_authentication(live_server, root):
    url = f"{live_server.url}/api/organizations/"
    headers = {"Authorization": "Token " + "0" * 40}
    for _ in range(getattr(settings, "API_AUTH_FAILURE_LIMIT", 10)):
        assert requests.get(url, headers=headers, timeout=10).status_code == 401
    assert requests.get(url, headers=headers, timeout=10).status_code == 429


def test_successful_api_requests_are_not_counted(live_server, root):
    url = f"{live_server.url}/api/organizations/"
    for _ in range(getattr(settings, "API_AUTH_FAILURE_LIMIT", 10) + 5):
        assert requests.get(url, auth=("root", PASSWORD), timeout=10).status_code == 200
