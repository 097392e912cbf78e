from django.apps import AppConfig


class SynthesisConfig(AppConfig):
    name = "synthesis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from config.runtime.presence import worker_info_source_register
        from config.runtime.upkeep import upkeep_task_register
        from synthesis.api.replays import job_replay, openai_speech_replay, speech_job_replay
        from synthesis.engines.registry import loaded_engine_names, resolve_device
        from synthesis.jobs import (
            cancelled_jobs_release_all_tenants,
            stream_jobs_expire_all_tenants,
            synthesis_jobs_recover_all_tenants,
        )
        from tenants.idempotency import idempotency_replayer_register

        # A request sent again with its Idempotency-Key is answered from the job it made; tenants
        # keeps the keys but sits below the jobs: it asks us how to answer each kind.
        idempotency_replayer_register("speech_job", speech_job_replay)
        idempotency_replayer_register("job", job_replay)
        idempotency_replayer_register("openai_speech", openai_speech_replay)

        # Each worker's heartbeat says which engines it has loaded and on what device.
        worker_info_source_register(lambda: {
            "engines_loaded": loaded_engine_names(),
            "device": resolve_device(settings.PARLA_DEVICE),
        })
        # The workers' upkeep: jobs whose message or worker was lost (told once per round
        # whether the broker lost its messages), streams nobody reads, cancelled jobs whose
        # worker died before it settled them.
        upkeep_task_register("jobs_requeued",
                             lambda upkeep: synthesis_jobs_recover_all_tenants(broker_lost=upkeep.broker_lost))
        upkeep_task_register("streams_expired", lambda _round: stream_jobs_expire_all_tenants())
        upkeep_task_register("cancelled_holds_released", lambda _round: cancelled_jobs_release_all_tenants())
