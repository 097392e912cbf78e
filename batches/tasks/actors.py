from config.dramatiq import QUEUE_DEFAULT, QUEUE_EXPORTS, parla_actor


@parla_actor(queue_name=QUEUE_DEFAULT, time_limit_ms=5 * 60 * 1000, max_retries=3)
def batch_dispatch(tenant_id: int, batch_id: int) -> None:
    """Send one message per queued item of the batch."""
    from batches.services import batch_dispatch_execute

    batch_dispatch_execute(tenant_id=tenant_id, batch_id=batch_id)


@parla_actor(queue_name=QUEUE_EXPORTS, time_limit_ms=30 * 60 * 1000, max_retries=3)
def batch_export(tenant_id: int, batch_id: int) -> None:
    """Write the batch's ZIP (audio + manifest.json + manifest.csv), then send its webhook."""
    from batches.export import batch_export_execute

    batch_export_execute(tenant_id=tenant_id, batch_id=batch_id)


# Retries are spaced by exponential backoff (10 s, 20 s, ... up to an hour); the delivery
# counts its own attempts and stops at webhooks.MAX_ATTEMPTS.
@parla_actor(queue_name=QUEUE_DEFAULT, time_limit_ms=60 * 1000, max_retries=10,
             min_backoff=10_000, max_backoff=3600_000)
def webhook_deliver(tenant_id: int, delivery_id: int) -> None:
    from batches.webhooks import webhook_deliver_execute

    webhook_deliver_execute(tenant_id=tenant_id, delivery_id=delivery_id)
