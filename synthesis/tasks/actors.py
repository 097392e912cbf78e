from config.dramatiq import QUEUE_SYNTHESIS_CPU, parla_actor
from synthesis.jobs.policy import ACTOR_MAX_RETRIES, JOB_TIME_LIMIT_MS, RETRY_MAX_BACKOFF_MS, RETRY_MIN_BACKOFF_MS


# Sent to synthesis-gpu instead for engines that need a GPU (see synthesis.jobs.create.enqueue).
@parla_actor(queue_name=QUEUE_SYNTHESIS_CPU, time_limit_ms=JOB_TIME_LIMIT_MS, max_retries=ACTOR_MAX_RETRIES,
             min_backoff=RETRY_MIN_BACKOFF_MS, max_backoff=RETRY_MAX_BACKOFF_MS)
def synthesis_job_run(tenant_id: int, job_id: int, suspect: bool = False) -> None:
    from synthesis.jobs import synthesis_job_execute

    synthesis_job_execute(tenant_id=tenant_id, job_id=job_id, suspect=suspect)
