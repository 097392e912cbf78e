"""The one error shape: {"code": ..., "message": ..., "extra": {...}}.

Services raise ApplicationError subclasses; the DRF exception handler maps those and every
DRF/Django error into the same envelope with a stable code from ErrorCode. Refusals by a tenant
limit are counted for operators where they are answered (quota_rejection_record), by the API's
handler here and by the dashboard (tenants.dashboard), never where the error is built.
"""

import logging
import math
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

from config.metrics_recording import quota_rejection_count

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    PARSE_ERROR = "parse_error"
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_API_KEY = "invalid_api_key"
    API_KEY_REVOKED = "api_key_revoked"
    TENANT_SUSPENDED = "tenant_suspended"
    NO_TENANT = "no_tenant"
    PERMISSION_DENIED = "permission_denied"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_STATE = "invalid_state"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    CONCURRENCY_LIMIT = "concurrency_limit_exceeded"
    INVALID_SSML = "invalid_ssml"
    INVALID_TEXT = "invalid_text"
    UNKNOWN_VOICE = "unknown_voice"
    ENGINE_UNAVAILABLE = "engine_unavailable"
    UNSUPPORTED_AUDIO = "unsupported_audio"
    AUDIO_TOO_LARGE = "audio_too_large"
    AUDIO_CORRUPT = "audio_corrupt"
    AUDIO_TOO_SHORT = "audio_too_short"
    AUDIO_TOO_LONG = "audio_too_long"
    AUDIO_TOO_LONG_REQUESTED = "audio_too_long_requested"
    PLAN_LIMIT = "plan_limit_reached"
    TEXT_TOO_LONG = "text_too_long"
    VOICE_NOT_READY = "voice_not_ready"
    AUDIO_NOT_READY = "audio_not_ready"
    AUDIO_DELETED = "audio_deleted"
    SYNTHESIS_FAILED = "synthesis_failed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    INVALID_BATCH = "invalid_batch"
    WEBHOOK_URL_NOT_ALLOWED = "webhook_url_not_allowed"
    EXPORT_NOT_READY = "export_not_ready"
    SERVER_ERROR = "server_error"


class ApplicationError(Exception):
    code: ErrorCode = ErrorCode.VALIDATION_ERROR
    status: int = status.HTTP_400_BAD_REQUEST
    # The parla_quota_rejections_total reason of an error whose code alone does not say
    # (an invalid_batch over the plan's batch size); see QUOTA_REJECTION_REASONS.
    quota_reason: str | None = None

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def headers(self) -> dict[str, str]:
        return {}


class NotFound(ApplicationError):
    code = ErrorCode.NOT_FOUND
    status = status.HTTP_404_NOT_FOUND

    def __init__(self, message: str = "Not found.", extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, extra)


class InvalidState(ApplicationError):
    code = ErrorCode.INVALID_STATE
    status = status.HTTP_409_CONFLICT


class Forbidden(ApplicationError):
    code = ErrorCode.PERMISSION_DENIED
    status = status.HTTP_403_FORBIDDEN


class _RetryAfterError(ApplicationError):
    status = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(
        self, message: str, extra: dict[str, Any] | None = None, *, retry_after: float = 60
    ) -> None:
        super().__init__(message, extra)
        self.retry_after = max(1, math.ceil(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class QuotaExceeded(_RetryAfterError):
    code = ErrorCode.QUOTA_EXCEEDED


class ConcurrencyLimitExceeded(_RetryAfterError):
    code = ErrorCode.CONCURRENCY_LIMIT


class RateLimited(_RetryAfterError):
    code = ErrorCode.RATE_LIMITED


class TenantSuspended(drf_exceptions.PermissionDenied):
    default_detail = "This tenant is suspended. Contact your operator."
    default_code = ErrorCode.TENANT_SUSPENDED.value


class InsufficientScope(drf_exceptions.PermissionDenied):
    default_code = ErrorCode.INSUFFICIENT_SCOPE.value


class ApiKeyRevoked(drf_exceptions.AuthenticationFailed):
    default_detail = "This API key has been revoked."
    default_code = ErrorCode.API_KEY_REVOKED.value


class InvalidApiKey(drf_exceptions.AuthenticationFailed):
    default_detail = "Invalid API key."
    default_code = ErrorCode.INVALID_API_KEY.value


class NoTenant(drf_exceptions.PermissionDenied):
    default_detail = "Your account is not a member of any active tenant."
    default_code = ErrorCode.NO_TENANT.value


_DRF_CODES: list[tuple[type[Exception], ErrorCode]] = [
    (drf_exceptions.ParseError, ErrorCode.PARSE_ERROR),
    (drf_exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (drf_exceptions.AuthenticationFailed, ErrorCode.INVALID_API_KEY),
    (drf_exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (drf_exceptions.NotFound, ErrorCode.NOT_FOUND),
    (drf_exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (drf_exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (drf_exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (drf_exceptions.Throttled, ErrorCode.RATE_LIMITED),
]

_KNOWN_CODES = {code.value for code in ErrorCode}

# The parla_quota_rejections_total reason of a refusal, by its error code (README, "Metrics
# and logs"): the monthly characters, requests per minute, jobs at once, and the plan's other
# limits (voices, recordings per voice, enrollments a day, text and audio per request).
QUOTA_REJECTION_REASONS: dict[str, str] = {
    ErrorCode.QUOTA_EXCEEDED: "characters",
    ErrorCode.RATE_LIMITED: "rate_limit",
    ErrorCode.CONCURRENCY_LIMIT: "concurrent_jobs",
    ErrorCode.PLAN_LIMIT: "plan_limit",
    ErrorCode.TEXT_TOO_LONG: "plan_limit",
    ErrorCode.AUDIO_TOO_LONG_REQUESTED: "plan_limit",
}


def quota_rejection_reason(code: str, error: Exception | None = None) -> str | None:
    """The reason an answered error counts under, or None when it is no refusal by a limit."""
    return getattr(error, "quota_reason", None) or QUOTA_REJECTION_REASONS.get(str(code))


def quota_rejection_record(code: str, error: Exception | None = None) -> None:
    """Count a refusal by a tenant limit once, as it is answered (API or dashboard).

    NOTE: not in the errors' constructors: an error can be built and then not raised, or
    caught and raised again as a new one that names the offending item."""
    reason = quota_rejection_reason(code, error)
    if reason is not None:
        quota_rejection_count(reason=reason)


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": str(code), "message": message, "extra": extra or {}}


def _drf_code(exc: drf_exceptions.APIException) -> ErrorCode:
    # Our own subclasses carry their code as default_code.
    default_code = getattr(exc, "default_code", "")
    if default_code in _KNOWN_CODES:
        return ErrorCode(default_code)
    for exc_class, code in _DRF_CODES:
        if isinstance(exc, exc_class):
            return code
    return ErrorCode.SERVER_ERROR if exc.status_code >= 500 else ErrorCode.VALIDATION_ERROR


def _message(detail: Any) -> str:
    if isinstance(detail, list | tuple) and detail:
        return _message(detail[0])
    if isinstance(detail, dict) and detail:
        return _message(next(iter(detail.values())))
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        body, http_status, headers = error_body(exc.code, exc.message, exc.extra), exc.status, exc.headers()
    elif isinstance(exc, Http404):
        body, http_status = error_body(ErrorCode.NOT_FOUND, "Not found."), 404
    elif isinstance(exc, DjangoPermissionDenied):
        body, http_status = error_body(ErrorCode.PERMISSION_DENIED, "Permission denied."), 403
    elif isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        body = error_body(ErrorCode.VALIDATION_ERROR, _message(fields), {"fields": fields})
        http_status = 400
    elif isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        first_field = next(iter(detail), "non_field_errors")
        message = _message(detail)
        if first_field != "non_field_errors":
            message = f"{first_field}: {message}"
        body = error_body(ErrorCode.VALIDATION_ERROR, message, {"fields": detail})
        http_status = 400
    elif isinstance(exc, drf_exceptions.APIException):
        body = error_body(_drf_code(exc), _message(exc.detail))
        http_status = exc.status_code
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    else:
        return None  # Unexpected: let Django log it and answer 500 (see handler500 below).
    quota_rejection_record(body["code"], exc)
    # Imported here: rest_framework.views imports the authentication classes, which
    # import this module.
    from rest_framework.views import set_rollback

    set_rollback()
    return Response(body, status=http_status, headers=headers)


def json_error_response(code: ErrorCode, message: str, http_status: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=http_status)


# Django-level handlers so that /api/ paths answer in the same envelope even when an
# error happens outside a DRF view (unknown route, crash).
API_PATH_PREFIXES = ("/api/", "/v1/")


def handler404(request, exception=None):
    if request.path.startswith(API_PATH_PREFIXES):
        return json_error_response(ErrorCode.NOT_FOUND, "Not found.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith(API_PATH_PREFIXES):
        return json_error_response(ErrorCode.SERVER_ERROR, "Internal server error.", 500)
    from django.views.defaults import server_error

    return server_error(request)
