"""Celery tasks of the connection handshake (Scenario B): thin, ids in, services do the work."""

from celery import shared_task

from .connections import PartnerUnavailable, connection_send_hello
from .models import Connection


@shared_task(
    bind=True,
    max_retries=8,
    autoretry_for=(PartnerUnavailable,),  # never a 4xx refusal: it cannot pass
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
)
def connection_send_hello_task(self, connection_pk: int) -> None:
    connection = Connection.objects.filter(pk=connection_pk, disconnected_at__isnull=True).first()
    if connection is None or connection.our_hello_verified:
        return
    connection_send_hello(connection=connection)
