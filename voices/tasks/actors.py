from config.dramatiq import QUEUE_SYNTHESIS_CPU, parla_actor


# Sent to synthesis-gpu instead for engines that need a GPU (see voices.services).
# A matched voice searches PARLA_MATCH_EVALUATIONS syntheses: about 9 min idle for 100.
@parla_actor(queue_name=QUEUE_SYNTHESIS_CPU, time_limit_ms=60 * 60 * 1000, max_retries=2)
def voice_profile_enroll(tenant_id: int, profile_id: int) -> None:
    from voices.enrollment import voice_profile_enroll_execute

    voice_profile_enroll_execute(tenant_id=tenant_id, profile_id=profile_id)
