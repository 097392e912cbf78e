"""Speech, streaming and jobs. Every call that makes audio is a job run by a worker; the web
process validates, reserves, enqueues and (for speech and streams) waits for the result."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from synthesis.api.responses import (
    JOB_ACCEPTED,
    AnyAcceptNegotiation,
    job_audio_response,
    job_created_response,
    speech_result_response,
    stream_response,
    wait_for_job,
)
from synthesis.api.serializers import JobListFilterSerializer, JobOutputSerializer, SpeechInputSerializer
from synthesis.jobs import synthesis_job_create, synthesis_job_delete, waiting_for_worker
from synthesis.models import SynthesisJob
from synthesis.selectors import speech_voice_resolve, synthesis_job_get, synthesis_job_list
from tenants.api_base import CreatedAtCursorPagination, TenantScopedAPIView, TenantScopedViewSet
from tenants.errors import ApplicationError
from tenants.idempotency import idempotency_parameter, idempotent
from tenants.models import ApiKey

AUDIO_RESPONSE = OpenApiResponse(
    response=OpenApiTypes.BINARY,
    description="The audio, with X-Parla-Job-Id, X-Parla-Characters, X-Parla-Audio-Seconds, X-Parla-Cache "
                "(hit or miss) and X-Parla-Engine headers.",
)
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
        raise ApplicationError("The body must be a JSON object.",
                               extra={"fields": {"non_field_errors": ["Expected an object."]}})
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
        response = job_created_response(job)
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
