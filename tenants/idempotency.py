"""Idempotency-Key for POSTs that create work.

    class SpeechView(TenantScopedAPIView):
        @idempotent
        def post(self, request): ...

- The same key with the same request (method, path, body) answers the first response again:
  no new job, no new charge.
- The same key with another request: 422 `idempotency_key_reused`.
- The same key while the first request is still being answered: 409 `idempotency_in_progress`.
- Keys belong to the tenant and expire after PARLA_IDEMPOTENCY_TTL_SECONDS (24 h).
- Only successful responses (2xx) are kept. A refused request changed nothing, so the key is
  freed and the client may send the request again with the same key.

Audio responses are not copied into the database: the record points at the job, and the
replay reads the job's stored audio. Tenants does not know how: the app that makes the audio
registers a replayer for each kind of record it leaves (`idempotency_replayer_register`, from
its AppConfig.ready()).
"""

import datetime as dt
import functools
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.errors import ApplicationError, ErrorCode
from tenants.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Visible ASCII, no spaces: what a UUID, an order number or a hash looks like.
KEY_PATTERN = r"^[!-~]{1,255}$"
# Response headers worth repeating on a replay.
_KEPT_HEADERS = ("Location", "Content-Disposition")

_replayers: dict[str, Callable[..., Any]] = {}


class IdempotencyKeyReused(ApplicationError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED
    status = 422


class IdempotencyInProgress(ApplicationError):
    code = ErrorCode.IDEMPOTENCY_IN_PROGRESS
    status = 409


def idempotency_replayer_register(kind: str, replay: Callable[..., Any]) -> None:
    """Answer again for stored responses of `kind`: a view that sets
    `response.parla_replay = {"kind": kind, **fields}` is replayed by `replay(tenant=..., **fields)`.
    """
    _replayers[kind] = replay


def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.rstrip("/").encode())
    digest.update(b"\0")
    digest.update(request.content_type.split(";")[0].strip().encode() if request.content_type else b"")
    digest.update(b"\0")
    if request.content_type and request.content_type.startswith("multipart/"):
        # Uploads can exceed what Django keeps in memory as a raw body: hash the parsed
        # fields and each file's bytes instead.
        for name in sorted(request.data.keys()):
            if name not in request.FILES:
                digest.update(f"{name}={request.data.getlist(name)!r}\0".encode())
        for name in sorted(request.FILES.keys()):
            for upload in request.FILES.getlist(name):
                digest.update(name.encode() + b"\0")
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    else:
        digest.update(request._request.body)
    return digest.hexdigest()


def _claim(*, tenant, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Take the key for this request (None), or return the record of an earlier one."""
    now = timezone.now()
    expires = now + dt.timedelta(seconds=settings.PARLA_IDEMPOTENCY_TTL_SECONDS)
    for _ in range(2):
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(tenant=tenant, key=key, fingerprint=fingerprint, expires_at=expires)
            return None
        except IntegrityError:
            existing = IdempotencyRecord.objects.for_tenant(tenant).filter(key=key).first()
            if existing is None:
                continue  # Freed between our insert and our read: try again.
            if existing.expires_at <= now:
                IdempotencyRecord.objects.for_tenant(tenant).filter(pk=existing.pk, expires_at__lte=now).delete()
                continue
            return existing
    raise IdempotencyInProgress("Another request with this Idempotency-Key is being answered.")


def _replay(record: IdempotencyRecord, *, tenant):
    replay = dict(record.replay)
    kind = replay.pop("kind", "json")
    headers = {**record.response_headers, "Idempotent-Replayed": "true"}
    if kind == "json":
        return Response(replay.get("body"), status=record.response_status, headers=headers)
    response = _replayers[kind](tenant=tenant, **replay)
    for name, value in headers.items():
        response[name] = value
    return response


def idempotent(view_method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a POST handler of a tenant-scoped view (runs after authentication)."""

    @functools.wraps(view_method)
    def wrapper(view, request: Request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(view, request, *args, **kwargs)
        key = key.strip()
        if not re.fullmatch(KEY_PATTERN, key):
            raise ApplicationError(
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (no spaces).",
                extra={"fields": {HEADER: ["Invalid key."]}},
            )
        tenant = request.tenant
        fingerprint = _fingerprint(request)
        existing = _claim(tenant=tenant, key=key, fingerprint=fingerprint)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request.", extra={"key": key}
                )
            if existing.state == IdempotencyRecord.State.IN_PROGRESS:
                raise IdempotencyInProgress(
                    "The first request with this Idempotency-Key is still being answered; retry shortly.",
                    extra={"key": key},
                )
            return _replay(existing, tenant=tenant)

        records = IdempotencyRecord.objects.for_tenant(tenant).filter(key=key, fingerprint=fingerprint)
        try:
            response = view_method(view, request, *args, **kwargs)
        except BaseException:
            records.delete()
            raise
        if not 200 <= response.status_code < 300:
            records.delete()
            return response
        replay = getattr(response, "parla_replay", None)
        if replay is None:
            replay = {"kind": "json", "body": getattr(response, "data", None)}
        headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
        records.update(
            state=IdempotencyRecord.State.COMPLETED,
            response_status=response.status_code,
            replay=replay,
            response_headers=headers,
        )
        return response

    return wrapper


def idempotency_records_purge_expired_all_tenants() -> int:
    """Drop expired keys (run by worker maintenance). Crosses tenants by design."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def idempotency_parameter():
    """The header as documented on every endpoint that honours it."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(
        HEADER, str, OpenApiParameter.HEADER, pattern=KEY_PATTERN,
        description="Send the same key again to get the first response back without new work or charge "
                    "(422 with another body, 409 while the first is running; kept 24 h).",
    )
