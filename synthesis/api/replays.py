"""Answering again for a request sent twice with one Idempotency-Key (tenants.idempotency).

An audio response is not stored with its key: the view leaves `response.parla_replay =
{"kind": ..., "job_id": ...}` and the replay reads the job as it is now. SynthesisConfig.ready()
registers these functions, one per kind, with tenants.idempotency.
"""

from rest_framework.response import Response

from synthesis.api.openai import sse_file_response
from synthesis.api.responses import job_created_response, speech_result_response
from synthesis.selectors import synthesis_job_get
from tenants.models import Tenant


def speech_job_replay(*, tenant: Tenant, job_id: int, **_) -> Response:
    """POST /api/v1/speech and /speech/stream: the audio, the job's error, or 202 with the job."""
    return speech_result_response(synthesis_job_get(tenant=tenant, job_id=job_id))


def job_replay(*, tenant: Tenant, job_id: int, **_) -> Response:
    """POST /api/v1/jobs: 202 with the job as it is now."""
    return job_created_response(synthesis_job_get(tenant=tenant, job_id=job_id))


def openai_speech_replay(*, tenant: Tenant, job_id: int, sse: bool = False, headers=None, **_):
    """POST /v1/audio/speech: the stored audio, as events when the first answer was events."""
    job = synthesis_job_get(tenant=tenant, job_id=job_id)
    # Audio deleted since: speech_result_response raises the same 404 as /api/v1/jobs/<id>/audio.
    if sse and job.audio_available:
        response = sse_file_response(job)
    else:
        response = speech_result_response(job)
    for name, value in (headers or {}).items():
        response[name] = value
    return response

