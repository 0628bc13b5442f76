"""Scenario B end to end: two complete installs (tests/system/two_installs.py), each writing
only into its own Jira, connected by invitation over their APIs."""

from __future__ import annotations

import pytest

from .two_installs import Install, connect_installs

pytestmark = [pytest.mark.system]


def credentials(install: Install) -> dict[str, str]:
    """What gives access to an install's Jira (and to the install itself)."""
    return {
        "Jira user": install.sync_user[0],
        "Jira token": install.sync_user[1],
        "local webhook secret": install.spec["webhook_secret"],
        "encryption key": install.spec["encryption_key"],
        "admin API token": install.token,
    }


def assert_no_foreign_credentials(a: Install, b: Install) -> None:
    """Neither install's database holds the other's credentials: not in any text column of
    any table, and not in any encrypted field once decrypted with the holder's own keys."""
    for holder, other in ((a, b), (b, a)):
        secrets = credentials(other)
        columns = holder.text_values()
        # The search sees a credential where one is: the holder's own API token.
        assert any(holder.token in v for v in columns["public.authtoken_token.key"])
        found = [
            f"{what} in {column}"
            for column, values in columns.items()
            for what, secret in secrets.items()
            if any(secret in value for value in values)
        ]
        decrypted = holder.decrypted_values()
        assert decrypted, f"install {holder.name}: no encrypted fields read"
        found += [
            f"{what} in {model} (decrypted)"
            for model, rows in decrypted.items()
            for what, secret in secrets.items()
            if any(secret in (value or "") for row in rows for value in row)
        ]
        assert not found, f"install {holder.name} holds install {other.name}'s {found}"


def test_two_installs_connect_and_neither_holds_the_others_jira_credentials(two_installs):
    a, b = two_installs
    org_a, org_b = connect_installs(a, b)

    assert (org_a["connectionType"], org_b["connectionType"]) == ("app", "app")
    assert org_a["syncDirection"] == org_b["syncDirection"] == "bidirectional"
    # What each side shares, as each admin set it.
    mappings_a = a.ok("GET", f"/api/organizations/{org_a['id']}/project-mappings/")
    mappings_b = b.ok("GET", f"/api/organizations/{org_b['id']}/project-mappings/")
    assert [(m["localProjectKey"], m["remoteProjectKey"]) for m in mappings_a] == [
        (a.project, b.project)
    ]
    assert [(m["localProjectKey"], m["remoteProjectKey"]) for m in mappings_b] == [
        (b.project, a.project)
    ]
    # Each install's organization for the other holds no partner Jira to call.
    for install, org in ((a, org_a), (b, org_b)):
        rows = install.sql(
            "SELECT remote_base_url, remote_user, remote_token FROM organizations_organization"
            " WHERE public_id = %s",
            (org["id"],),
        )
        assert rows == [("", "", "")], f"install {install.name}: {rows}"
    assert_no_foreign_credentials(a, b)


def test_an_install_stopped_and_started_again_is_still_connected(two_installs):
    a, b = two_installs
    org_a, org_b = connect_installs(a, b)
    b.stop()
    assert b.api_down()
    b.start()
    assert b.organization(org_b["id"])["handshakeStatus"] == "active"
    assert a.organization(org_a["id"])["handshakeStatus"] == "active"
