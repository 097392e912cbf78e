"""Speech, streaming and jobs. Every call that makes audio is a job run by a worker; the web
process validates, reserves, enqueues and (for speech and streams) waits for the result."""

import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from synthesis.api.serializers import JobListFilterSerializer, JobOutputSerializer, SpeechInputSerializer
from synthesis.live import job_event_next, stream_event_next, stream_reader_gone
from synthesis.models import SynthesisJob
from synthesis.selectors import speech_voice_resolve, synthesis_job_get, synthesis_job_list
from synthesis.jobs import DONE_FIELDS, synthesis_job_create, synthesis_job_delete, waiting_for_worker
from tenants.api_base import CreatedAtCursorPagination, TenantScopedAPIView, TenantScopedViewSet
from tenants.errors import ApplicationError, ErrorCode, NotFound, error_body
from tenants.idempotency import idempotency_parameter, idempotent, register_replayer
from tenants.models import ApiKey

ERROR_STATUS = {
    ErrorCode.SYNTHESIS_FAILED: 502,
    ErrorCode.ENGINE_UNAVAILABLE: 409,
    ErrorCode.VOICE_NOT_READY: 409,
}

AUDIO_RESPONSE = OpenApiResponse(
    response=OpenApiTypes.BINARY,
    description="The audio, with X-Parla-Job-Id, X-Parla-Characters, X-Parla-Audio-Seconds, X-Parla-Cache "
                "(hit or miss) and X-Parla-Engine headers.",
)
JOB_ACCEPTED = OpenApiResponse(JobOutputSerializer, description="The job is queued or still running (see waiting_for).")
SPEECH_EXAMPLE = OpenApiExample(
    "Plain text", value={"text": "Your order ships on 3 May.", "voice": "piper:en_US-joe-medium", "format": "mp3"},
    request_only=True,
)
ERRORS = {
    400: OpenApiResponse(description="validation_error, parse_error, invalid_text, invalid_ssml, unknown_voice, "
                                     "text_too_long"),
    401: OpenApiResponse(description="not_authenticated, invalid_api_key, api_key_revoked"),
    403: OpenApiResponse(description="insufficient_scope, tenant_suspended"),
    409: OpenApiResponse(description="engine_unavailable, voice_not_ready, idempotency_in_progress"),
    415: OpenApiResponse(description="unsupported_media_type: send application/json"),
    422: OpenApiResponse(description="idempotency_key_reused"),
    429: OpenApiResponse(description="rate_limited, quota_exceeded, concurrency_limit_exceeded (Retry-After)"),
}


def _api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def create_job_from_request(request: Request, *, mode: str, data=None) -> SynthesisJob:
    """Parse a speech body, resolve its voice within the tenant, and create the job."""
    serializer = SpeechInputSerializer(data=request.data if data is None else data)
    if not isinstance(serializer.initial_data, dict):
        raise ApplicationError("The body must be a JSON object.", extra={"fields": {"non_field_errors": ["Expected an object."]}})
    serializer.is_valid(raise_exception=True)
    values = serializer.validated_data
    audio = serializer.audio_options()
    voice = speech_voice_resolve(tenant=request.tenant, voice=values.get("voice"))
    return synthesis_job_create(
        tenant=request.tenant,
        voice=voice,
        mode=mode,
        text=values.get("text"),
        ssml=values.get("ssml"),
        language=values.get("language"),
        normalize=values["normalize"],
        audio=audio,
        api_key=_api_key(request),
        # The dashboard (session) speaks as the member; API keys speak for themselves.
        created_by=request.user if _api_key(request) is None and request.user.is_authenticated else None,
        fallback=values["fallback"],
    )


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
        raise _NotReady(f"The job is {job.status}; {hint}.", extra={"job": job.pk, "status": job.status})
    response = FileResponse(default_storage.open(job.storage_path, "rb"), status=status_code,
                            content_type=job.content_type)
    response["Content-Length"] = str(job.size_bytes)
    if download:
        response["Content-Disposition"] = f'attachment; filename="parla-job-{job.pk}.{job.storage_path.rsplit(".", 1)[-1]}"'
    for name, value in job_headers(job).items():
        response[name] = value
    return response


class _NotReady(ApplicationError):
    code = ErrorCode.AUDIO_NOT_READY
    status = 409


def job_failed_response(job: SynthesisJob) -> Response:
    code = job.error_code or ErrorCode.SYNTHESIS_FAILED.value
    return Response(
        error_body(code, job.error_message or "Synthesis failed.", {"job": job.pk}),
        status=ERROR_STATUS.get(code, 400),
        headers={"X-Parla-Job-Id": str(job.pk)},
    )


def job_accepted_response(job: SynthesisJob) -> Response:
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


def _replay_speech(*, tenant, job_id: int, **_):
    return speech_result_response(synthesis_job_get(tenant=tenant, job_id=job_id))


def _replay_job(*, tenant, job_id: int, **_):
    job = synthesis_job_get(tenant=tenant, job_id=job_id)
    return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                    headers={"Location": f"/api/v1/jobs/{job.pk}"})


register_replayer("speech_job", _replay_speech)
register_replayer("job", _replay_job)


class AnyAcceptNegotiation(DefaultContentNegotiation):
    """Audio endpoints answer audio whatever the Accept header asks for (clients send
    audio/*, application/octet-stream...); errors still come as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


class SpeechView(TenantScopedAPIView):
    required_scope = ApiKey.Scope.SPEECH.value
    parser_classes = [JSONParser]
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        operation_id="speech_create",
        request=SpeechInputSerializer,
        responses={200: AUDIO_RESPONSE, 202: JOB_ACCEPTED, **ERRORS},
        parameters=[idempotency_parameter()],
        examples=[SPEECH_EXAMPLE],
        tags=["speech"],
        description="Synthesise and answer with the audio. The request waits up to PARLA_SYNC_WAIT_SECONDS for "
                    "its job; past that (or while no worker serves the voice's queue) it answers 202 with the job.",
    )
    @idempotent
    def post(self, request: Request):
        job = create_job_from_request(request, mode=SynthesisJob.Mode.SYNC)
        if not waiting_for_worker(job):
            job = wait_for_job(job, timeout=settings.PARLA_SYNC_WAIT_SECONDS)
        response = speech_result_response(job)
        response.parla_replay = {"kind": "speech_job", "job_id": job.pk}
        return response


class SpeechStreamView(TenantScopedAPIView):
    required_scope = ApiKey.Scope.SPEECH.value
    parser_classes = [JSONParser]
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        operation_id="speech_stream",
        request=SpeechInputSerializer,
        responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="Chunked audio (wav with a streaming "
                                        "header, pcm, mp3, opus or ogg) that starts after the first sentence."),
                   202: JOB_ACCEPTED, **ERRORS},
        parameters=[idempotency_parameter()],
        tags=["speech"],
    )
    @idempotent
    def post(self, request: Request):
        job = create_job_from_request(request, mode=SynthesisJob.Mode.STREAM)
        response = stream_response(job)
        response.parla_replay = {"kind": "speech_job", "job_id": job.pk}
        return response


def stream_response(job: SynthesisJob, *, transform=None):
    """Wait for the worker's first event, then relay its chunks as they arrive.

    While it waits and relays, this request is the stream's reader (synthesis.live): when the
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


class JobViewSet(TenantScopedViewSet):
    queryset = SynthesisJob.objects
    required_scope = ApiKey.Scope.SPEECH.value
    parser_classes = [JSONParser]
    pagination_class = CreatedAtCursorPagination
    serializer_class = JobOutputSerializer
    lookup_value_regex = r"\d+"
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s for s, _ in SynthesisJob.Status.choices]),
            OpenApiParameter("voice", str, description="A catalog voice id or one of your voice ids."),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
        ],
        responses={200: JobOutputSerializer(many=True), 400: ERRORS[400]},
        tags=["jobs"],
    )
    def list(self, request: Request) -> Response:
        filters = JobListFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        jobs = synthesis_job_list(tenant=request.tenant, filters=filters.validated_data)
        page = self.paginate_queryset(jobs)
        return self.get_paginated_response(JobOutputSerializer(page, many=True).data)

    @extend_schema(
        request=SpeechInputSerializer,
        responses={202: JobOutputSerializer, **ERRORS},
        parameters=[idempotency_parameter()],
        examples=[SPEECH_EXAMPLE],
        tags=["jobs"],
    )
    @idempotent
    def create(self, request: Request) -> Response:
        job = create_job_from_request(request, mode=SynthesisJob.Mode.ASYNC)
        response = Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED,
                            headers={"Location": f"/api/v1/jobs/{job.pk}"})
        response.parla_replay = {"kind": "job", "job_id": job.pk}
        return response

    @extend_schema(responses={200: JobOutputSerializer, 404: OpenApiResponse(description="not_found")}, tags=["jobs"])
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(JobOutputSerializer(synthesis_job_get(tenant=request.tenant, job_id=int(pk))).data)

    @extend_schema(responses={204: None, 404: OpenApiResponse(description="not_found")}, tags=["jobs"],
                   description="Cancel the job if it has not finished and delete its stored audio. The job "
                               "stays in the history (it is the record behind your usage).")
    def destroy(self, request: Request, pk: str) -> Response:
        synthesis_job_delete(tenant=request.tenant, job=synthesis_job_get(tenant=request.tenant, job_id=int(pk)))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={200: AUDIO_RESPONSE, 404: OpenApiResponse(description="not_found, audio deleted"),
                   409: OpenApiResponse(description="audio_not_ready")},
        tags=["jobs"],
    )
    @action(detail=True, methods=["get"], url_path="audio")
    def audio(self, request: Request, pk: str):
        job = synthesis_job_get(tenant=request.tenant, job_id=int(pk))
        return job_audio_response(job, download=request.query_params.get("download") == "1")
