"""What every scenario needs: the organization and both webhooks set up on a started stack,
Alice's calls to either site, and waiting until the sync has settled."""

from __future__ import annotations

import os
import sys
import time

import load
import requests
from stack import ALICE, PARTNER_HOOK_SECRET, REPO, SYNC_LOCAL, SYNC_PARTNER, WEBHOOK_SECRET, Stack

from devtools.jira_admin import register_webhook


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncapp.settings")
        sys.path.insert(0, str(REPO))
        django.setup()
        self.org = partner_org(
            name="Bench partner", site=stack.partner, project="REM", secret=PARTNER_HOOK_SECRET
        )
        register_webhook(
            stack.local,
            SYNC_LOCAL,
            f"{stack.base}/webhooks/local/?secret={WEBHOOK_SECRET}",
            'project = "LOC"',
        )
        self.session = load.loopback_session()
        self.session.auth = ALICE
        self.ingest_rounds = 3

    def api(self, site: str, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{site}/rest/api/3{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def settle(self, timeout: float = 60) -> None:
        from webhooks.models import WebhookDelivery

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle = all(
                requests.get(f"{s}/_sim/idle?timeout=0.5", timeout=5).status_code == 200
                for s in (self.stack.local, self.stack.partner)
            )
            busy = WebhookDelivery.objects.filter(status__in=["pending", "processing", "failed"])
            if idle and not busy.exists():
                time.sleep(0.3)
                if not busy.exists():
                    return
            time.sleep(0.1)
        raise RuntimeError("the sync did not settle")

    def writes(self) -> int:
        total = 0
        for site, user in ((self.stack.local, SYNC_LOCAL), (self.stack.partner, SYNC_PARTNER)):
            calls = requests.get(f"{site}/_sim/calls", timeout=10).json()["calls"]
            total += sum(
                1
                for c in calls
                if c.get("user") == user[0]
                and c["method"] in ("POST", "PUT", "DELETE")
                and c["status"] < 400
            )
        return total

    def create(self, site: str, project: str, summary: str, labels: tuple[str, ...] = ()) -> str:
        fields = {"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary}
        if labels:
            fields["labels"] = list(labels)
        return self.api(site, "POST", "/issue", json={"fields": fields})["key"]

    def linked_issues(self, n: int) -> list[tuple[str, str]]:
        """n linked issue pairs (created locally, pushed); their partner (id, key)."""
        from sync.models import IssueLink

        keys = [self.create(self.stack.local, "LOC", f"Load target {i}") for i in range(n)]
        self.settle(300)
        return list(
            IssueLink.objects.filter(local_issue_key__in=keys).values_list(
                "remote_issue_id", "remote_issue_key"
            )
        )

    def incoming_url(self) -> str:
        return f"{self.org.incoming_webhook_url}?secret={self.org.incoming_secret}"

    def last_delivery_pk(self) -> int:
        """The newest stored delivery's pk (0 if none): what came after it is new."""
        from webhooks.models import WebhookDelivery

        return WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def partner_org(*, name: str, site: str, project: str, secret: str, push_jql: str = ""):
    """A two-way partner organization mapped LOC <-> `project`, requiring signatures, with
    the partner's webhook registered as its Jira admin would."""
    from organizations import services

    org = services.organization_create(
        name=name,
        remote_base_url=site,
        remote_user=SYNC_PARTNER[0],
        remote_token=SYNC_PARTNER[1],
        sync_direction="bidirectional",
        remote_handshake_token=secret,
        require_signature=True,
    )
    services.project_mapping_create(
        organization=org, local_project_key="LOC", remote_project_key=project, push_jql=push_jql
    )
    register_webhook(
        site,
        SYNC_PARTNER,
        f"{org.incoming_webhook_url}?secret={org.incoming_secret}",
        f'project = "{project}"',
        secret=secret,
    )
    return org
