"""Errors of reference uploads. Each has its own stable code; none stores anything."""

import math

from rest_framework import status

from tenants.errors import ApplicationError, ErrorCode


class ReferenceRejected(ApplicationError):
    """Base of every refused reference recording. `extra` names the file and the measure."""

    status = status.HTTP_400_BAD_REQUEST


class UnsupportedAudio(ReferenceRejected):
    """Not audio in a supported container (HTML, archives, text, images, unknown)."""

    code = ErrorCode.UNSUPPORTED_AUDIO
    status = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class AudioTooLarge(ReferenceRejected):
    code = ErrorCode.AUDIO_TOO_LARGE
    status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class AudioCorrupt(ReferenceRejected):
    """Truncated, undecodable, or a header that claims far more audio than the file holds."""

    code = ErrorCode.AUDIO_CORRUPT


class AudioTooShort(ReferenceRejected):
    code = ErrorCode.AUDIO_TOO_SHORT


class AudioTooLong(ReferenceRejected):
    code = ErrorCode.AUDIO_TOO_LONG


class PlanLimitReached(ApplicationError):
    """A plan limit on voices, cloned voices or references per voice."""

    code = ErrorCode.PLAN_LIMIT
    status = status.HTTP_403_FORBIDDEN


class EnrollmentsPerDayReached(PlanLimitReached):
    """The plan's enrollments a day (UTC) are used up; Retry-After says when the day ends."""

    def __init__(self, message: str, extra: dict | None = None, *, retry_after: float = 60) -> None:
        super().__init__(message, extra)
        self.retry_after = max(1, math.ceil(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
