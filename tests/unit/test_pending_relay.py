"""The relay's own connection and its reading of the trigger's notifications."""

from webhooks.pending_relay import _delivery_id, relay_conninfo


def test_the_relay_connects_with_the_databases_libpq_parameters_only():
    params = relay_conninfo(
        {
            "NAME": "sync",
            "USER": "sync",
            "PASSWORD": "",
            "HOST": "db.example",
            "PORT": 5432,
            "OPTIONS": {"sslmode": "require", "pool": True, "server_side_binding": True},
        }
    )
    assert params == {
        "dbname": "sync",
        "user": "sync",
        "host": "db.example",
        "port": 5432,
        "sslmode": "require",
        "application_name": "sync-relay",
    }


def test_a_notification_names_its_delivery_and_anything_else_is_skipped():
    assert _delivery_id("12:3") == 12
    assert _delivery_id("12:") == 12
    assert _delivery_id("not a delivery") is None
