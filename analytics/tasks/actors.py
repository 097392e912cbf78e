from config.dramatiq import QUEUE_DEFAULT, parla_actor


# Enqueued after commit whenever a ledger row is written (analytics.services). Safe to run
# twice or concurrently: each pending ledger row is added exactly once (analytics.rollups).
@parla_actor(queue_name=QUEUE_DEFAULT, time_limit_ms=10 * 60 * 1000, max_retries=5,
             min_backoff=1000, max_backoff=60_000)
def usage_rollup_run(tenant_id: int) -> None:
    from analytics.rollups import usage_rollup_run as rollup

    rollup(tenant_id=tenant_id)
