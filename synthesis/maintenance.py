"""Periodic upkeep, run by one worker a minute (see synthesis.workers). Crosses tenants."""

import logging

logger = logging.getLogger(__name__)


def maintenance_run_all_tenants() -> dict[str, int]:
    from analytics.rollups import usage_rollup_run_all_tenants
    from synthesis.live import broker_state_age, workers_alive
    from synthesis.jobs import (
        cancelled_jobs_release_all_tenants,
        stream_jobs_expire_all_tenants,
        synthesis_jobs_recover_all_tenants,
    )
    from tenants.idempotency import idempotency_records_purge_expired_all_tenants
    from tenants.quotas import quota_reservations_release_stale_all_tenants
    from voices.enrollment_jobs import voice_enrollments_recover_all_tenants

    # Asked once: it says "lost" only to the first to ask after the loss.
    broker_lost = broker_state_age() == 0.0
    done = {
        "jobs_requeued": synthesis_jobs_recover_all_tenants(broker_lost=broker_lost),
        "enrollments_recovered": voice_enrollments_recover_all_tenants(
            alive_worker_ids={worker["id"] for worker in workers_alive()}, broker_lost=broker_lost),
        "streams_expired": stream_jobs_expire_all_tenants(),
        "cancelled_holds_released": cancelled_jobs_release_all_tenants(),
        "reservations_released": quota_reservations_release_stale_all_tenants(),
        "idempotency_keys_purged": idempotency_records_purge_expired_all_tenants(),
        # Ledger rows whose rollup message was lost (each job's own message usually does it).
        "usage_rows_rolled_up": usage_rollup_run_all_tenants(),
    }
    if any(done.values()):
        logger.info("maintenance.done", extra=done)
    return done
