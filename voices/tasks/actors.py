from config.dramatiq import QUEUE_SYNTHESIS_CPU, parla_actor

# A matched voice searches PARLA_MATCH_EVALUATIONS syntheses: about 9 min idle for 100.
ENROLL_TIME_LIMIT_MS = 60 * 60 * 1000


# Sent to synthesis-gpu instead for engines that need a GPU (see voices.services).
# `enrollment_id` is None only in messages sent before enrollments had rows of their own.
@parla_actor(queue_name=QUEUE_SYNTHESIS_CPU, time_limit_ms=ENROLL_TIME_LIMIT_MS, max_retries=2)
def voice_profile_enroll(tenant_id: int, profile_id: int | None, enrollment_id: int | None = None) -> None:
    from voices.enrollment import voice_profile_enroll_execute

    voice_profile_enroll_execute(tenant_id=tenant_id, profile_id=profile_id, enrollment_id=enrollment_id)
