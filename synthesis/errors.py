from rest_framework import status

from tenants.errors import ApplicationError, ErrorCode


class InvalidSsml(ApplicationError):
    """SSML that does not parse or uses something outside the supported subset.

    `extra` carries {"line": int, "column": int, "element": str} where known.
    """

    code = ErrorCode.INVALID_SSML
    status = status.HTTP_400_BAD_REQUEST


class InvalidText(ApplicationError):
    code = ErrorCode.INVALID_TEXT
    status = status.HTTP_400_BAD_REQUEST


class InvalidAudioOptions(ApplicationError):
    """An output format, sample rate, speed, pitch... outside what Parla supports."""

    code = ErrorCode.VALIDATION_ERROR
    status = status.HTTP_400_BAD_REQUEST


class UnknownVoice(ApplicationError):
    code = ErrorCode.UNKNOWN_VOICE
    status = status.HTTP_400_BAD_REQUEST


class EngineUnavailable(ApplicationError):
    """The engine is not enabled here, or its model files are missing.

    The message names the engine and, for a missing model, the folder it looked in.
    """

    code = ErrorCode.ENGINE_UNAVAILABLE
    status = status.HTTP_409_CONFLICT


class SynthesisFailed(Exception):
    """A permanent engine failure for this input (not retried)."""


class AudioTooLongRequested(ApplicationError):
    """A request whose audio (speech and pauses) would exceed the plan's per-request limit.

    Raised before the job is queued, from an estimate that errs short, and by the worker
    when the audio it is rendering passes the limit. `extra`: {"limit_seconds", and
    "estimated_seconds" or "rendered_seconds"}.
    """

    code = ErrorCode.AUDIO_TOO_LONG_REQUESTED
    status = status.HTTP_400_BAD_REQUEST
