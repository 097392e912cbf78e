from django.apps import AppConfig


class VoicesConfig(AppConfig):
    name = "voices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.runtime.upkeep import upkeep_task_register
        from synthesis.selectors import VoiceDirectory, voice_directory_register
        from voices.enrollment_jobs import voice_enrollments_recover_all_tenants
        from voices.selectors import own_voice_resolve, voice_list

        # Synthesis resolves a request's own voice, and lists the voices on the Speak page, here.
        voice_directory_register(VoiceDirectory(own_voice=own_voice_resolve, voice_options=voice_list))

        # The workers' upkeep: enrollments whose message or worker was lost.
        upkeep_task_register("enrollments_recovered", lambda upkeep: voice_enrollments_recover_all_tenants(
            alive_worker_ids=set(upkeep.alive_worker_ids), broker_lost=upkeep.broker_lost))
