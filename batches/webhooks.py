"""Signed webhooks: validation of receiver URLs, signing, and delivery with retries.

Signature header (verify it on your side; see README):

    X-Parla-Signature: t=1764000000,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the webhook secret>

The timestamp lets receivers refuse replays older than a few minutes.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches.models import WebhookDelivery
from tenants.errors import ApplicationError, ErrorCode
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Parla-Signature"
# Attempts per delivery (the first and the retries), spaced by Dramatiq's exponential backoff.
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10


class WebhookUrlNotAllowed(ApplicationError):
    code = ErrorCode.WEBHOOK_URL_NOT_ALLOWED
    status = 400


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(*, secret: str, header: str, body: bytes, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does (also used by Parla's tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


def webhook_url_validate(url: str) -> str:
    """http(s) only; no loopback, private or link-local receivers unless the operator allows
    them (PARLA_WEBHOOK_ALLOW_PRIVATE). Checked when the URL is given and again at delivery,
    since DNS can change in between."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlNotAllowed("Webhook URLs must be http:// or https:// URLs with a host.",
                                   extra={"fields": {"webhook_url": ["Not an http(s) URL."]}})
    if parts.username or parts.password:
        raise WebhookUrlNotAllowed("Webhook URLs must not carry credentials.",
                                   extra={"fields": {"webhook_url": ["No user:password@ in the URL."]}})
    if settings.PARLA_WEBHOOK_ALLOW_PRIVATE:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlNotAllowed(f"The webhook host {parts.hostname!r} does not resolve.",
                                   extra={"fields": {"webhook_url": ["Unknown host."]}}) from None
    blocked = sorted({info[4][0] for info in infos if not _address_allowed(info[4][0])})
    if blocked:
        raise WebhookUrlNotAllowed(
            f"The webhook host {parts.hostname!r} resolves to a private or loopback address; "
            "only public receivers are allowed.",
            extra={"fields": {"webhook_url": ["Private address."]}, "addresses": blocked},
        )
    return url


def webhook_delivery_create(*, tenant: Tenant | int, url: str, event: str, payload: dict, batch=None) -> WebhookDelivery:
    from batches.tasks.actors import webhook_deliver as webhook_deliver_actor

    tenant_id = getattr(tenant, "pk", tenant)
    delivery = WebhookDelivery.objects.create(tenant_id=tenant_id, batch=batch, url=url, event=event, payload=payload)
    transaction.on_commit(lambda: webhook_deliver_actor.send(tenant_id, delivery.pk))
    return delivery


def webhook_deliver_execute(*, tenant_id: int, delivery_id: int) -> None:
    """One attempt. Raises on failure while attempts remain, so the broker retries with backoff."""
    import requests

    delivery = WebhookDelivery.objects.for_tenant(tenant_id).filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return
    tenant = Tenant.objects.get(pk=tenant_id)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    error, status_code = "", None
    try:
        webhook_url_validate(delivery.url)
        response = requests.post(
            delivery.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Parla-Webhooks/1",
                SIGNATURE_HEADER: sign(secret=tenant.webhook_secret, timestamp=timestamp, body=body),
                "X-Parla-Event": delivery.event,
                "X-Parla-Delivery": str(delivery.pk),
            },
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"The receiver answered {status_code}."
    except WebhookUrlNotAllowed as exc:
        error = exc.message
        delivery.attempts = MAX_ATTEMPTS  # Will not get better by retrying.
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save()
    logger.info("webhook_deliver.attempt", extra={
        "tenant_id": tenant_id, "delivery_id": delivery_id, "status": delivery.status, "code": status_code,
    })
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise WebhookDeliveryFailed(error)


class WebhookDeliveryFailed(Exception):
    """Raised so Dramatiq retries the delivery later."""
