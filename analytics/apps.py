from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.rollups import usage_rollup_run_all_tenants
        from analytics.services import enrollment_usage_record
        from config.runtime.upkeep import upkeep_task_register
        from voices.events import on_enrollment_finished

        # Voices sits below analytics: it announces each enrollment's end, the ledger listens.
        on_enrollment_finished(
            lambda enrollment: enrollment_usage_record(tenant=enrollment.tenant_id, enrollment=enrollment)
        )
        # The workers' upkeep: ledger rows whose rollup message was lost (each job's own
        # message usually does it); last in a round, after the rows the other tasks wrote.
        upkeep_task_register("usage_rows_rolled_up", lambda _round: usage_rollup_run_all_tenants(), stage="rollup")
