"""Periodic upkeep, run by one worker a minute (see synthesis.workers). Crosses tenants."""

import logging

logger = logging.getLogger(__name__)


def maintenance_run_all_tenants() -> dict[str, int]:
    from analytics.rollups import usage_rollup_run_all_tenants
    from synthesis.services import stream_jobs_expire_all_tenants, synthesis_jobs_recover_all_tenants
    from tenants.idempotency import idempotency_records_purge_expired_all_tenants
    from tenants.quotas import quota_reservations_release_stale_all_tenants

    done = {
        "jobs_requeued": synthesis_jobs_recover_all_tenants(),
        "streams_expired": stream_jobs_expire_all_tenants(),
        "reservations_released": quota_reservations_release_stale_all_tenants(),
        "idempotency_keys_purged": idempotency_records_purge_expired_all_tenants(),
        # Ledger rows whose rollup message was lost (each job's own message usually does it).
        "usage_rows_rolled_up": usage_rollup_run_all_tenants(),
    }
    if any(done.values()):
        logger.info("maintenance.done", extra=done)
    return done
