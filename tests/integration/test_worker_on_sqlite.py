"""The embedded default (`make run`: SQLite) keeps a worker's copies of an organization and
its mappings right with the same triggers as PostgreSQL, and takes echo locks with the same
statements. Run in a child process: the suite's own database is PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.utils import timezone
from organizations import services
from organizations.models import Organization, ProjectMapping
from sync import echo
from sync.mapping import project_mappings_of
from webhooks.models import WebhookDelivery
from webhooks.tasks import claim

org = services.organization_create(name="Acme", remote_token="first")
seen = {}

def claimed(key):
    d = WebhookDelivery.objects.create(
        source="partner", organization=org, dedupe_key=key, event_type="jira:issue_updated",
        issue_id="10", body="{}",
    )
    return claim(d.pk).organization

def version():
    return Organization.objects.get(pk=org.pk).config_version

seen["token"] = [claimed("a").remote_token]
Organization.objects.filter(pk=org.pk).update(remote_token="second")
seen["token"].append(claimed("b").remote_token)
v = version()
Organization.objects.filter(pk=org.pk).update(last_delivery_at=timezone.now())
seen["last_delivery_moves"] = version() != v
mapping = services.project_mapping_create(
    organization=org, local_project_key="LOC", remote_project_key="REM"
)
seen["mappings"] = [[m.remote_project_key for m in project_mappings_of(claimed("c"))]]
ProjectMapping.objects.filter(pk=mapping.pk).update(remote_project_key="OTHER")
seen["mappings"].append([m.remote_project_key for m in project_mappings_of(claimed("d"))])
stale = Organization.objects.get(pk=org.pk)
ProjectMapping.objects.filter(pk=mapping.pk).delete()
bumped = version()
stale.save()
seen["stale_save_keeps_up"] = version() >= bumped

for _ in range(2):
    echo.echo_expect(organization=org, side="local", issue_id="10", values={"summary": "S"})
consumed = [
    echo.echo_consume(organization=org, side="local", issue_id="10", values={"summary": "S"})
    for _ in range(3)
]
seen["consumed"] = [sorted(c) for c in consumed]
print(json.dumps(seen))
"""


def test_organization_mappings_and_echo_locks_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "syncapp.settings",
        "ALLOW_DEV_KEYS": "true",
        "VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["token"] == ["first", "second"]  # a change is seen by the next claim
    assert not seen["last_delivery_moves"]
    assert seen["mappings"] == [["REM"], ["OTHER"]]
    assert seen["stale_save_keeps_up"]
    assert seen["consumed"] == [["summary"], ["summary"], []]  # two writes, two echoes
