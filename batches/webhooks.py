"""Signed webhooks: signing, and delivery with retries to a checked, pinned address
(tenants/outbound.py checks receiver URLs).

Signature header (verify it on your side; see README):

    X-Parla-Signature: t=1764000000,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the webhook secret>

The timestamp lets receivers refuse replays older than a few minutes.
"""

import hashlib
import hmac
import json
import logging
import time

from django.db import transaction
from django.utils import timezone

from batches.models import WebhookDelivery
from tenants.models import Tenant
from tenants.outbound import (
    DNS_FAILED,
    SIGNATURE_HEADER,
    WebhookUrlNotAllowed,
    delivery_error_class,
    pinned_post,
    webhook_target_resolve,
    webhook_url_validate,  # noqa: F401  re-exported: callers validate URLs here
)

logger = logging.getLogger(__name__)

# Attempts per delivery (the first and the retries), spaced by Dramatiq's exponential backoff.
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 10


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


def webhook_delivery_create(
    *, tenant: Tenant | int, url: str, event: str, payload: dict, batch=None
) -> WebhookDelivery:
    from batches.tasks.actors import webhook_deliver as webhook_deliver_actor

    tenant_id = getattr(tenant, "pk", tenant)
    delivery = WebhookDelivery.objects.create(tenant_id=tenant_id, batch=batch, url=url, event=event, payload=payload)
    transaction.on_commit(lambda: webhook_deliver_actor.send(tenant_id, delivery.pk))
    return delivery


def webhook_deliver_execute(*, tenant_id: int, delivery_id: int) -> None:
    """One attempt. Raises on failure while attempts remain, so the broker retries with backoff.

    SECURITY: the URL is checked again here (a name may resolve elsewhere since it was given)
    and the POST goes to the address that check resolved, never to a second lookup's answer.
    The delivery log shows the tenant a generic error class only (tenants/outbound.py).
    """
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
        target = webhook_target_resolve(delivery.url)
        response = pinned_post(
            target,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Parla-Webhooks/1",
                SIGNATURE_HEADER: sign(secret=tenant.webhook_secret, timestamp=timestamp, body=body),
                "X-Parla-Event": delivery.event,
                "X-Parla-Delivery": str(delivery.pk),
            },
            timeout=TIMEOUT_SECONDS,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except WebhookUrlNotAllowed as exc:
        error = delivery_error_class(exc)
        if exc.reason != DNS_FAILED:  # A name may come back; a refused address or port will not.
            delivery.attempts = MAX_ATTEMPTS
    except requests.RequestException as exc:
        error = delivery_error_class(exc)
        # The details stay in the operators' log; the tenant sees the class only.
        logger.info("webhook_deliver.error", extra={
            "tenant_id": tenant_id, "delivery_id": delivery_id, "error": f"{type(exc).__name__}: {exc}"[:500],
        })
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
