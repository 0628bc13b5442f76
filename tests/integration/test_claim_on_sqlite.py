"""The embedded default (`make run`: SQLite) claims and coalesces deliveries with the same
SQL as PostgreSQL, less what SQLite lacks (an alias seen in RETURNING's subquery,
FOR UPDATE SKIP LOCKED). Run in a child process: the suite's own database is PostgreSQL."""

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
from webhooks.models import WebhookDelivery
from webhooks.tasks import claim, claim_behind

def delivery(key, event_type="jira:issue_updated"):
    return WebhookDelivery.objects.create(
        source="local", dedupe_key=key, event_type=event_type, issue_id="10", body="{}"
    )

first, second, deleted = delivery("a"), delivery("b"), delivery("c", "jira:issue_deleted")
claimed = claim(first.pk)
again = claim(first.pk)
behind = claim_behind(claimed)
print(json.dumps({
    "claimed": claimed.pk, "status": claimed.status, "busy": bool(claimed.pair_busy),
    "again": again is None, "behind": [d.pk for d in behind],
    "second": second.pk, "deleted_status": WebhookDelivery.objects.get(pk=deleted.pk).status,
}))
"""


def test_claim_and_coalesce_on_sqlite(tmp_path):
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
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "processing" and not result["busy"]
    assert result["again"]  # taken once
    assert result["behind"] == [result["second"]]  # the update queued behind, not the delete
    assert result["deleted_status"] == "pending"
