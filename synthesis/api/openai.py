"""POST /v1/audio/speech: OpenAI's text-to-speech endpoint, served by Parla's job pipeline.

Point an OpenAI client at Parla (`OpenAI(base_url="https://parla.example/v1", api_key=<Parla
key>)`) and `client.audio.speech.create(...)` works unchanged. The request becomes a job
exactly like POST /api/v1/speech (quota, rate limit, concurrency, Idempotency-Key), then:

- stream_format "audio" with a streamable format (mp3, opus, wav, pcm): the audio is relayed
  as the worker produces it; flac and aac are rendered whole and then sent.
- stream_format "sse": Server-Sent Events, `speech.audio.delta` with base64 audio, then
  `speech.audio.done` with usage (Parla counts characters: input_tokens is the input's
  billable characters, output_tokens 0).
- A job that is not finished within PARLA_SYNC_WAIT_SECONDS (or waits for a worker that is
  not running) answers 202 with the Parla job, as /api/v1/speech does; fetch its audio from
  /api/v1/jobs/<id>/audio.

Errors have OpenAI's shape, {"error": {message, type, param, code}}, with Parla's status and
Parla's error code as `code`, so the OpenAI SDK raises its usual exception classes.

The body's serializer and the voice it names are in synthesis.api.openai_input.
"""

import base64
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from synthesis.api.openai_input import OpenAISpeechInputSerializer, openai_voice_resolve
from synthesis.api.responses import (
    JOB_ACCEPTED,
    AnyAcceptNegotiation,
    job_headers,
    speech_result_response,
    stream_response,
    wait_for_job,
)
from synthesis.jobs import synthesis_job_create, waiting_for_worker
from synthesis.models import SynthesisJob
from tenants.api_base import TenantScopedAPIView
from tenants.errors import ErrorCode, api_exception_handler, error_body
from tenants.idempotency import idempotency_parameter, idempotent
from tenants.models import ApiKey

logger = logging.getLogger(__name__)

SSE_CONTENT_TYPE = "text/event-stream"
SSE_PIECE_BYTES = 32 * 1024

# Parla's field names (in error `fields`) → this endpoint's parameter names.
_PARAM_OF_FIELD = {"text": "input", "ssml": "input", "format": "response_format", "sample_rate": "response_format"}
_PARAM_OF_CODE = {
    ErrorCode.TEXT_TOO_LONG: "input",
    ErrorCode.INVALID_TEXT: "input",
    ErrorCode.UNKNOWN_VOICE: "voice",
    ErrorCode.VOICE_NOT_READY: "voice",
}


# --- Errors in OpenAI's shape --------------------------------------------------------------


def _error_type(code: str, status_code: int) -> str:
    if status_code == 401:
        return "authentication_error"
    if code == ErrorCode.QUOTA_EXCEEDED:
        return "insufficient_quota"
    if status_code == 429:
        return "rate_limit_error"
    if status_code >= 500:
        return "server_error"
    return "invalid_request_error"


def openai_error_body(body: dict[str, Any], status_code: int) -> dict[str, Any]:
    """Parla's {code, message, extra} → OpenAI's {"error": {message, type, param, code}}."""
    code = str(body.get("code") or ErrorCode.SERVER_ERROR)
    extra = body.get("extra") or {}
    fields = extra.get("fields") if isinstance(extra, dict) else None
    if isinstance(fields, dict) and fields:
        first = next(iter(fields))
        param = None if first == "non_field_errors" else _PARAM_OF_FIELD.get(first, first)
    else:
        param = _PARAM_OF_CODE.get(code)
    return {"error": {"message": body.get("message", ""), "type": _error_type(code, status_code),
                      "param": param, "code": code}}


def _is_parla_error(data: Any) -> bool:
    return isinstance(data, dict) and {"code", "message"} <= set(data)


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    response = api_exception_handler(exc, context)
    if response is None:
        # OpenAI clients expect their error shape on a 500 too; Django would answer Parla's.
        from rest_framework.views import set_rollback

        request = context.get("request")
        logger.exception("openai_speech.unexpected_error", exc_info=exc,
                         extra={"tenant_id": getattr(getattr(request, "tenant", None), "pk", None)})
        set_rollback()
        response = Response(error_body(ErrorCode.SERVER_ERROR, "Internal server error."), status=500)
    response.data = openai_error_body(response.data, response.status_code)
    return response


def _as_openai(response):
    """Errors that the shared helpers return (a failed job) instead of raising."""
    if isinstance(response, Response) and response.status_code >= 400 and _is_parla_error(response.data):
        response.data = openai_error_body(response.data, response.status_code)
    return response


# --- Server-Sent Events --------------------------------------------------------------------


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _delta(data: bytes) -> bytes:
    return _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode("ascii")})


def _done(job: SynthesisJob) -> bytes:
    usage = {"input_tokens": job.characters, "output_tokens": 0, "total_tokens": job.characters}
    return _sse({"type": "speech.audio.done", "usage": usage})


def _sse_events(job: SynthesisJob, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Relay audio chunks as delta events; end with done, or with an error if the job did not succeed."""
    for chunk in chunks:
        yield _delta(chunk)
    job.refresh_from_db()  # The worker announces the end after it has committed the row.
    if job.status == SynthesisJob.Status.SUCCEEDED:
        yield _done(job)
        return
    code = job.error_code or ErrorCode.SYNTHESIS_FAILED.value
    message = job.error_message or "The stream ended before the audio was complete."
    yield _sse({"type": "error", **openai_error_body(error_body(code, message), 502)})


def _stored_pieces(job: SynthesisJob) -> Iterator[bytes]:
    with default_storage.open(job.storage_path, "rb") as handle:
        while piece := handle.read(SSE_PIECE_BYTES):
            yield piece


def _sse_response(job: SynthesisJob, events: Iterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type=SSE_CONTENT_TYPE)
    for name, value in job_headers(job).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


def sse_file_response(job: SynthesisJob) -> StreamingHttpResponse:
    """A finished job's stored audio as SSE (formats that cannot stream, and replays)."""
    return _sse_response(job, _sse_events(job, _stored_pieces(job)))


# --- The endpoint --------------------------------------------------------------------------


def _speech_response(job: SynthesisJob, *, sse: bool):
    if job.mode == SynthesisJob.Mode.STREAM:
        response = stream_response(job, transform=(lambda chunks: _sse_events(job, chunks)) if sse else None)
        if not sse:
            return response
        if isinstance(response, FileResponse):  # The worker streamed nothing: serve the stored file.
            response.close()
            job.refresh_from_db()
            return sse_file_response(job)
        if isinstance(response, StreamingHttpResponse):
            response["Content-Type"] = SSE_CONTENT_TYPE
        return response
    if not waiting_for_worker(job):
        job = wait_for_job(job, timeout=settings.PARLA_SYNC_WAIT_SECONDS)
    if sse and job.audio_available:
        return sse_file_response(job)
    return speech_result_response(job)


AUDIO_OR_EVENTS = OpenApiResponse(
    OpenApiTypes.BINARY,
    description="The audio in response_format (streamed as it is produced for mp3, opus, wav and pcm), or with "
                "stream_format sse an event stream: `data: {\"type\": \"speech.audio.delta\", \"audio\": <base64>}` "
                "events, then `data: {\"type\": \"speech.audio.done\", \"usage\": {input_tokens, output_tokens, "
                "total_tokens}}`. Headers: X-Parla-Job-Id, X-Parla-Characters, X-Parla-Engine, X-Parla-Voice, "
                "X-Parla-Cache (and X-Parla-Audio-Seconds for files).",
)


class OpenAIErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.ChoiceField(choices=["invalid_request_error", "authentication_error", "rate_limit_error",
                                            "insufficient_quota", "server_error"])
    param = serializers.CharField(allow_null=True, help_text="The request field at fault, if any.")
    code = serializers.CharField(help_text="Parla's error code (validation_error, unknown_voice, quota_exceeded...).")


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorDetailSerializer()


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenAIErrorSerializer, description=description)


class OpenAISpeechView(TenantScopedAPIView):
    required_scope = ApiKey.Scope.SPEECH.value
    parser_classes = [JSONParser]
    content_negotiation_class = AnyAcceptNegotiation

    def get_exception_handler(self):
        return openai_exception_handler

    @extend_schema(
        operation_id="openai_audio_speech_create",
        request=OpenAISpeechInputSerializer,
        responses={
            (200, "application/octet-stream"): AUDIO_OR_EVENTS,
            (200, SSE_CONTENT_TYPE): AUDIO_OR_EVENTS,
            202: JOB_ACCEPTED,
            400: _error("validation_error (param names the field), unknown_voice, text_too_long, invalid_text"),
            401: _error("not_authenticated, invalid_api_key, api_key_revoked (authentication_error)"),
            403: _error("insufficient_scope (the key needs the speech scope), tenant_suspended"),
            409: _error("engine_unavailable, voice_not_ready, idempotency_in_progress"),
            429: _error("rate_limited, concurrency_limit_exceeded (rate_limit_error); quota_exceeded "
                        "(insufficient_quota). Retry-After says when to try again."),
            502: _error("synthesis_failed (server_error); the characters are refunded"),
        },
        parameters=[idempotency_parameter()],
        tags=["openai"],
        description="OpenAI-compatible text to speech: use an OpenAI client with base_url `<parla>/v1` and a "
                    "Parla key (speech scope). Same pipeline, limits and headers as POST /api/v1/speech. If the "
                    "job has not finished within PARLA_SYNC_WAIT_SECONDS, or no worker serves its voice, the "
                    "answer is 202 with the Parla job (Location and X-Parla-Job-Id headers); its audio is at "
                    "/api/v1/jobs/{id}/audio once it succeeds.",
    )
    def post(self, request: Request):
        return _as_openai(self._speak(request))

    @idempotent
    def _speak(self, request: Request):
        serializer = OpenAISpeechInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        voice_name, custom = values["voice"]
        voice = openai_voice_resolve(tenant=request.tenant, voice=voice_name, custom=custom, model=values["model"])
        audio = serializer.audio_options()
        job = synthesis_job_create(
            tenant=request.tenant,
            voice=voice,
            mode=SynthesisJob.Mode.STREAM if audio.streamable else SynthesisJob.Mode.SYNC,
            text=values["input"],
            audio=audio,
            api_key=request.auth if isinstance(request.auth, ApiKey) else None,
        )
        sse = values["stream_format"] == "sse"
        response = _speech_response(job, sse=sse)
        response.parla_replay = {"kind": "openai_speech", "job_id": job.pk, "sse": sse}
        return response
