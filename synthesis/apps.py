from django.apps import AppConfig


class SynthesisConfig(AppConfig):
    name = "synthesis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from synthesis import workers
        from voices.enrollment_jobs import enrollment_worker_id_source

        # Voices records which worker runs an enrollment (for the upkeep to tell a dead one)
        # but sits below the worker presence kept here: hand it down.
        enrollment_worker_id_source(lambda: workers.current_worker_id)
