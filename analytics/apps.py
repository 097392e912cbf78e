from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.rollups import usage_rollup_run_all_tenants
        from analytics.services import (
            enrollment_usage_record,
            usage_failure_record,
            usage_record_create,
            usage_record_ctes,
            usage_rollup_soon,
        )
        from config.runtime.upkeep import upkeep_task_register
        from synthesis.jobs.events import on_job_charged, on_job_failed
        from voices.events import on_enrollment_finished

        # Synthesis and voices sit below analytics: they announce each charge, failure and
        # enrollment's end inside the transaction that settles it; the ledger writes its rows.
        # On PostgreSQL the ledger's rows are CTEs of the job's one settling statement.
        on_job_charged(
            lambda charge: usage_record_create(
                tenant=charge.job.tenant_id, job=charge.job, characters_billed=charge.characters_billed,
                cached=charge.cached, processing_seconds=charge.processing_seconds,
                model_version=charge.model_version, gpu_seconds=charge.gpu_seconds, checked=charge.first,
            ),
            ctes=lambda charge, source: usage_record_ctes(
                source=source, tenant_id=charge.job.tenant_id, characters_billed=charge.characters_billed,
                cached=charge.cached, processing_seconds=charge.processing_seconds,
                gpu_seconds=charge.gpu_seconds, model_version=charge.model_version, now=charge.at,
            ),
            after_commit=usage_rollup_soon,
        )
        on_job_failed(lambda job: usage_failure_record(tenant=job.tenant_id, job=job))
        on_enrollment_finished(
            lambda enrollment: enrollment_usage_record(tenant=enrollment.tenant_id, enrollment=enrollment)
        )
        # The workers' upkeep: ledger rows whose rollup message was lost (each job's own
        # message usually does it); last in a round, after the rows the other tasks wrote.
        upkeep_task_register("usage_rows_rolled_up", lambda _round: usage_rollup_run_all_tenants(), stage="rollup")
