"""`GET /healthz`: 200 when the database and the broker answer, 503 naming what is down."""

import logging

from celery import current_app as celery_app
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS = {"database": _database, "broker": _broker}


@require_GET
def healthz(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "down"
            logger.warning("health.down", extra={"component": name, "error": type(exc).__name__})
            results[name] = f"down: {type(exc).__name__}"
        else:
            results[name] = "ok"
    down = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "down" if down else "ok", "down": down, "checks": results}
    return JsonResponse(body, status=503 if down else 200)
