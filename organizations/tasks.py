"""Celery tasks of Scenario B's connections: thin, ids in, services do the work."""

from celery import shared_task

from .connections import PartnerUnavailable, connection_send_hello
from .models import Connection
from .relay import RelayWait, connection_relay, outbox_sweep, relay_retry_claim


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


@shared_task(name="connections.relay", bind=True, ignore_result=True, max_retries=None)
def connection_relay_task(self, connection_pk: int) -> None:
    try:
        connection_relay(connection_pk=connection_pk)
    except RelayWait as wait:
        # One retry waits per connection, however many messages were queued meanwhile.
        if relay_retry_claim(connection_pk=connection_pk, countdown=wait.countdown):
            raise self.retry(countdown=wait.countdown) from None


@shared_task(name="connections.sweep_outbox", ignore_result=True)
def sweep_outbox_task() -> int:
    return outbox_sweep()
