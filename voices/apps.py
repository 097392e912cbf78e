from django.apps import AppConfig


class VoicesConfig(AppConfig):
    name = "voices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.runtime.upkeep import upkeep_task_register
        from voices.enrollment_jobs import voice_enrollments_recover_all_tenants

        # The workers' upkeep: enrollments whose message or worker was lost.
        upkeep_task_register("enrollments_recovered", lambda upkeep: voice_enrollments_recover_all_tenants(
            alive_worker_ids=set(upkeep.alive_worker_ids), broker_lost=upkeep.broker_lost))
