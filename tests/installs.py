"""A second complete install of the service for Scenario B tests (system and browser).

The install under test is the live server on the test database. The partner install started
here has its OWN PostgreSQL database (created, migrated, dropped at the end), its own
encryption key and admin user, and its own web process (`devtools.installs`). It runs its
Celery tasks in the web process (CELERY_TASK_ALWAYS_EAGER): it needs no second broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.db import connection

from devtools.installs import Install, install_start
from devtools.supervisor import Supervisor, free_port


def _server_dsn(dbname: str) -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{dbname}"


@contextmanager
def second_install(
    *,
    name: str,
    admin: tuple[str, str],
    var_dir: Path,
    processes: Supervisor | None = None,
    **env: str,
) -> Iterator[tuple[Install, str]]:
    """A partner install named `name` (its database is `<test database>_<name>`), with `env`
    on top of its defaults. Yields the install and its database URL."""
    dbname = f"{connection.settings_dict['NAME']}_{name.replace('-', '_')}"
    with psycopg.connect(_server_dsn("postgres"), autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{dbname}"')
    db_url = _server_dsn(dbname).replace("postgresql://", "postgres://", 1)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    base_env.update(
        DATABASE_URL=db_url,
        FIELD_ENCRYPTION_KEYS=f"{name}-encryption-key-not-the-test-install",
        VAR_DIR=str(var_dir),
        CELERY_TASK_ALWAYS_EAGER="true",
        CACHE_KEY_PREFIX=name,
        LOCAL_JIRA_URL="http://127.0.0.1:9",
        JIRA_ALLOW_HTTP="true",
        JIRA_ALLOWED_HOSTS="127.0.0.1,localhost",
        ALLOW_DEV_KEYS="true",
    )
    base_env.update(env)
    own = processes is None
    supervisor = Supervisor() if own else processes
    install = None
    try:
        install = install_start(
            supervisor,
            name=name,
            port=free_port(),
            env=base_env,
            admin=admin,
            logs=var_dir,
            worker=False,
        )
        yield install, db_url
    finally:
        if own:
            supervisor.stop(15)
        elif install is not None:
            for process in install.processes:
                process.terminate()
        with psycopg.connect(_server_dsn("postgres"), autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
