"""The service refuses to start on the public development keys with DEBUG off, and the
production security settings come from the environment (issue 11, keys)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY_WARNINGS = ("security.W004", "security.W008", "security.W012", "security.W016")
CLEARED = (
    "DEBUG",
    "ALLOW_DEV_KEYS",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEYS",
    "SECURE_HSTS_SECONDS",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "DJANGO_SETTINGS_MODULE",
)
REAL_KEYS = {
    "SECRET_KEY": "a-long-random-secret-key-from-the-environment-0123456789-abcdefghijklmnop",
    "FIELD_ENCRYPTION_KEYS": "a-long-random-field-encryption-key-0123456789",
}


def run(args: list[str], timeout: int = 120, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environment.update(DEBUG="false", **env)
    return subprocess.run(  # noqa: S603
        [sys.executable, *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_manage_py_check_fails_on_the_development_keys_with_debug_off():
    result = run(["manage.py", "check"])
    assert result.returncode != 0
    assert "syncapp.E001" in result.stderr and "syncapp.E002" in result.stderr


def test_the_web_application_refuses_to_start_on_the_development_keys():
    result = run(["-c", "import syncapp.wsgi"])
    assert result.returncode != 0
    assert "development key" in result.stderr


def test_the_worker_refuses_to_start_on_the_development_keys():
    result = run(
        ["-m", "celery", "-A", "syncapp", "worker", "--pool=solo", "-Q", "none"], timeout=60
    )
    assert result.returncode != 0
    assert "development key" in result.stderr + result.stdout


def test_allow_dev_keys_lets_tests_and_ci_start():
    result = run(["manage.py", "check"], ALLOW_DEV_KEYS="true")
    assert result.returncode == 0, result.stderr
    assert "syncapp.W001" in result.stderr


def test_real_keys_pass_the_check():
    result = run(["manage.py", "check"], **REAL_KEYS)
    assert result.returncode == 0, result.stderr
    result = run(["-c", "import syncapp.wsgi"], **REAL_KEYS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("configured", [False, True])
def test_deploy_warnings_are_settings_from_the_environment(configured):
    env = dict(REAL_KEYS)
    if configured:
        env.update(
            SECURE_HSTS_SECONDS="31536000",
            SECURE_SSL_REDIRECT="true",
            SESSION_COOKIE_SECURE="true",
            CSRF_COOKIE_SECURE="true",
        )
    result = run(["manage.py", "check", "--deploy"], **env)
    for warning in DEPLOY_WARNINGS:
        assert (warning in result.stderr) is not configured, (warning, result.stderr)


def test_the_proxy_ssl_header_is_opt_in(settings):
    check = "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    env = dict(REAL_KEYS, DJANGO_SETTINGS_MODULE="syncapp.settings")
    code = f"import django; django.setup(); {check}"
    assert run(["-c", code], **env).stdout.strip() == "None"
    opted = run(["-c", code], SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https", **env)
    assert opted.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"
