from django.conf import settings

from config.dramatiq import QUEUE_DEFAULT, QUEUE_SYNTHESIS_CPU, parla_actor

JOB_TIME_LIMIT_MS = settings.PARLA_JOB_TIME_LIMIT_SECONDS * 1000


# Sent to synthesis-gpu instead for engines that need a GPU (see synthesis.services._enqueue).
@parla_actor(queue_name=QUEUE_SYNTHESIS_CPU, time_limit_ms=JOB_TIME_LIMIT_MS, max_retries=2,
             min_backoff=1000, max_backoff=30_000)
def synthesis_job_run(tenant_id: int, job_id: int) -> None:
    from synthesis.services import synthesis_job_execute

    synthesis_job_execute(tenant_id=tenant_id, job_id=job_id)


@parla_actor(queue_name=QUEUE_DEFAULT, time_limit_ms=5 * 60 * 1000, max_retries=0)
def maintenance_run() -> None:
    """Recover lost jobs, expire stale streams and quota holds, purge old idempotency keys."""
    from synthesis.maintenance import maintenance_run_all_tenants

    maintenance_run_all_tenants()
