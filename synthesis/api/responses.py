"""How a job answers over HTTP, shared by the speech API, the OpenAI endpoint, the dashboards
and voice previews: the audio with its headers, the error of a failed job, 202 with a job that
is not finished, a stream relayed as the worker produces it, and the bounded wait for a job.
"""

import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from config.runtime.events import job_event_next, stream_event_next, stream_reader_gone
from synthesis.api.serializers import JobOutputSerializer
from synthesis.jobs import DONE_FIELDS, waiting_for_worker
from synthesis.models import SynthesisJob
from tenants.errors import ApplicationError, ErrorCode, NotFound, error_body

ERROR_STATUS = {
    ErrorCode.SYNTHESIS_FAILED: 502,
    ErrorCode.ENGINE_UNAVAILABLE: 409,
    ErrorCode.VOICE_NOT_READY: 409,
}

JOB_ACCEPTED = OpenApiResponse(JobOutputSerializer, description="The job is queued or still running (see waiting_for).")


class AnyAcceptNegotiation(DefaultContentNegotiation):
    """Audio endpoints answer audio whatever the Accept header asks for (clients send
    audio/*, application/octet-stream...); errors still come as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


class AudioNotReady(ApplicationError):
    code = ErrorCode.AUDIO_NOT_READY
    status = 409


# --- Waiting -----------------------------------------------------------------------------------


def wait_for_job(job: SynthesisJob, *, timeout: float) -> SynthesisJob:
    """Wait (bounded) for the job's worker to say it is done; return the job as it now is.

    A "done" event carries the finished row's audio fields (synthesis.jobs.settle.DONE_FIELDS), so the job
    created by this request is brought up to date without reading it again; anything else
    (an error, a timeout, an event without them) reads the row."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = job_event_next(job_id=job.pk, timeout=min(left, 5.0))
        if event is not None and event.kind == "done" and _apply_done(job, event.info):
            return job
        if event is not None and event.kind in ("done", "error"):
            break
        job.refresh_from_db()
        if job.finished:
            break
    job.refresh_from_db()
    return job


def _apply_done(job: SynthesisJob, info: dict) -> bool:
    if info.get("status") != SynthesisJob.Status.SUCCEEDED or not all(name in info for name in DONE_FIELDS):
        return False
    job.status = SynthesisJob.Status.SUCCEEDED
    for name in DONE_FIELDS:
        setattr(job, name, info[name])
    job.holds_slot = False
    return True


# --- A job's answer ----------------------------------------------------------------------------


def job_headers(job: SynthesisJob) -> dict[str, str]:
    headers = {
        "X-Parla-Job-Id": str(job.pk),
        "X-Parla-Characters": str(job.characters),
        "X-Parla-Engine": job.engine,
        "X-Parla-Voice": job.voice_id,
    }
    if job.audio_seconds is not None:
        headers["X-Parla-Audio-Seconds"] = f"{job.audio_seconds:.3f}"
    if job.status == SynthesisJob.Status.SUCCEEDED:
        headers["X-Parla-Cache"] = "hit" if job.cache_hit else "miss"
    if job.fallback_used:
        headers["X-Parla-Fallback"] = f"{job.requested_voice_id} -> {job.voice_id}"
    return headers


def job_audio_response(job: SynthesisJob, *, status_code: int = 200, download: bool = False):
    if job.audio_deleted_at is not None:
        raise NotFound("This job's audio was deleted.", extra={"code": ErrorCode.AUDIO_DELETED.value, "job": job.pk})
    if not job.audio_available:
        hint = "it produced no audio" if job.finished else "try again when it has succeeded"
        raise AudioNotReady(f"The job is {job.status}; {hint}.", extra={"job": job.pk, "status": job.status})
    response = FileResponse(default_storage.open(job.storage_path, "rb"), status=status_code,
                            content_type=job.content_type)
    response["Content-Length"] = str(job.size_bytes)
    if download:
        extension = job.storage_path.rsplit(".", 1)[-1]
        response["Content-Disposition"] = f'attachment; filename="parla-job-{job.pk}.{extension}"'
    for name, value in job_headers(job).items():
        response[name] = value
    return response


def job_failed_response(job: SynthesisJob) -> Response:
    code = job.error_code or ErrorCode.SYNTHESIS_FAILED.value
    return Response(
        error_body(code, job.error_message or "Synthesis failed.", {"job": job.pk}),
        status=ERROR_STATUS.get(code, 400),
        headers={"X-Parla-Job-Id": str(job.pk)},
    )


def job_created_response(job: SynthesisJob) -> Response:
    """202 with a job created to run in the background (POST /api/v1/jobs)."""
    return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                    headers={"Location": f"/api/v1/jobs/{job.pk}"})


def job_accepted_response(job: SynthesisJob) -> Response:
    """202 with a job the caller meant to wait for, and why it is not done yet."""
    body = JobOutputSerializer(job).data
    if body["waiting_for"] == "gpu_worker":
        body["message"] = ("No GPU worker is running: the job waits in the synthesis-gpu queue. "
                           "Send fallback: true to be served by the default voice instead.")
    else:
        body["message"] = "The job is not finished yet; poll its URL or fetch its audio later."
    return Response(body, status=status.HTTP_202_ACCEPTED,
                    headers={"Location": f"/api/v1/jobs/{job.pk}", "X-Parla-Job-Id": str(job.pk)})


def speech_result_response(job: SynthesisJob):
    """Audio when the job succeeded, its error when it failed, else 202 with the job."""
    if job.status == SynthesisJob.Status.SUCCEEDED:
        return job_audio_response(job)
    if job.status in (SynthesisJob.Status.FAILED, SynthesisJob.Status.CANCELLED):
        return job_failed_response(job)
    return job_accepted_response(job)


# --- Streams -----------------------------------------------------------------------------------


def stream_response(job: SynthesisJob, *, transform=None):
    """Wait for the worker's first event, then relay its chunks as they arrive.

    While it waits and relays, this request is the stream's reader (config.runtime.events): when the
    client goes, the worker stops at its next sentence and the tenant pays for what was sent.
    """
    if waiting_for_worker(job):
        stream_reader_gone(job_id=job.pk)
        return job_accepted_response(job)
    deadline = time.monotonic() + settings.PARLA_SYNC_WAIT_SECONDS
    first = None
    while first is None and (left := deadline - time.monotonic()) > 0:
        first = stream_event_next(job_id=job.pk, timeout=min(left, 5.0))
    if first is None or first.kind in ("error", "done"):
        stream_reader_gone(job_id=job.pk)
        job.refresh_from_db()
        if first is None:
            return job_accepted_response(job)
        # "done" first: nothing streamed (should not happen), so serve the stored file.
        return job_failed_response(job) if first.kind == "error" else speech_result_response(job)

    def relay():
        try:
            while True:
                event = stream_event_next(job_id=job.pk, timeout=settings.PARLA_STREAM_IDLE_SECONDS)
                if event is None or event.kind in ("done", "error"):
                    return
                if event.kind == "chunk" and event.data:
                    yield event.data
        finally:  # the end, or the client went away (the server closes this generator)
            stream_reader_gone(job_id=job.pk)

    chunks = relay() if transform is None else transform(relay())
    response = StreamingHttpResponse(chunks, content_type=first.info["content_type"])
    response["X-Parla-Job-Id"] = str(job.pk)
    response["X-Parla-Characters"] = str(job.characters)
    response["X-Parla-Engine"] = first.info.get("engine", job.engine)
    response["X-Parla-Voice"] = job.voice_id
    response["X-Parla-Cache"] = "miss"
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # Proxies must pass chunks on at once.
    return response
