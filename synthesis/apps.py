from django.apps import AppConfig


class SynthesisConfig(AppConfig):
    name = "synthesis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from synthesis import workers
        from synthesis.api.replays import job_replay, openai_speech_replay, speech_job_replay
        from tenants.idempotency import idempotency_replayer_register
        from voices.enrollment_jobs import enrollment_worker_id_source

        # Voices records which worker runs an enrollment (for the upkeep to tell a dead one)
        # but sits below the worker presence kept here: hand it down.
        enrollment_worker_id_source(lambda: workers.current_worker_id)

        # A request sent again with its Idempotency-Key is answered from the job it made; tenants
        # keeps the keys but sits below the jobs: it asks us how to answer each kind.
        idempotency_replayer_register("speech_job", speech_job_replay)
        idempotency_replayer_register("job", job_replay)
        idempotency_replayer_register("openai_speech", openai_speech_replay)
