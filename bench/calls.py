"""Jira calls per change: for each kind of genuine change, the calls the sync spent (reads
and writes) next to the minimum possible (one write), and the calls spent on each echo."""

from __future__ import annotations

from collections.abc import Callable

from harness import Bench


def changes(bench: Bench) -> list[tuple[str, Callable[[], None], int]]:
    """One change of each kind by Alice, in order on one issue: (name, action, minimum writes)."""
    from sync.models import IssueLink

    local, partner = bench.stack.local, bench.stack.partner
    state = {}

    def create():
        state["key"] = bench.create(local, "LOC", "Calls per change")

    def edit():
        bench.api(local, "PUT", f"/issue/{state['key']}", json={"fields": {"summary": "Edited"}})

    def transition():
        ts = bench.api(local, "GET", f"/issue/{state['key']}/transitions")["transitions"]
        target = next(t for t in ts if t["to"]["name"] == "In Progress")
        bench.api(
            local,
            "POST",
            f"/issue/{state['key']}/transitions",
            json={"transition": {"id": target["id"]}},
        )

    def comment():
        body = {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "A comment"}]}],
        }
        bench.api(local, "POST", f"/issue/{state['key']}/comment", json={"body": body})

    def partner_edit():
        remote = IssueLink.objects.get(local_issue_key=state["key"]).remote_issue_key
        bench.api(
            partner, "PUT", f"/issue/{remote}", json={"fields": {"priority": {"name": "High"}}}
        )

    return [
        ("create (push)", create, 1),
        ("field edit (push)", edit, 1),
        ("transition (push)", transition, 1),
        ("comment (push)", comment, 1),
        ("field edit (pull)", partner_edit, 1),
    ]


def calls_per_change(bench: Bench) -> list[dict]:
    from webhooks.models import WebhookDelivery

    rows = []
    for name, action, minimum in changes(bench):
        bench.settle()
        first = bench.last_delivery_pk()
        writes_before = bench.writes()
        action()
        bench.settle()
        new = WebhookDelivery.objects.filter(pk__gt=first)
        genuine = [d.calls for d in new if d.status == "done"]
        echoes = [d.calls for d in new if d.status == "echo"]
        rows.append(
            {
                "change": name,
                "deliveries": new.count(),
                "calls": sum(genuine),
                "writes": bench.writes() - writes_before,
                "minimum_writes": minimum,
                "echo_deliveries": len(echoes),
                "calls_per_echo": (sum(echoes) / len(echoes)) if echoes else None,
            }
        )
    return rows
