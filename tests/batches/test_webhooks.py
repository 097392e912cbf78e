"""Signed webhooks delivered to a real local HTTP receiver, with retries and a delivery log."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from batches.models import WebhookDelivery
from batches.webhooks import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    WebhookDeliveryFailed,
    WebhookUrlNotAllowed,
    sign,
    verify,
    webhook_deliver_execute,
    webhook_url_validate,
)
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers with the statuses it is given, in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/parla"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True  # The receiver runs on loopback in tests.
    made = []

    def make(*statuses):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for item in made:
        item.close()


def _delivery(tenant, url, payload=None):
    return WebhookDelivery.objects.create(tenant=tenant, url=url, event="batch.completed",
                                          payload=payload or {"event": "batch.completed", "batch": {"id": 1}})


def test_signature_round_trip_and_tampering():
    body = b'{"event":"batch.completed"}'
    header = sign(secret="s3cret", timestamp=int(time.time()), body=body)

    assert verify(secret="s3cret", header=header, body=body)
    assert not verify(secret="s3cret", header=header, body=body + b" ")
    assert not verify(secret="other", header=header, body=body)
    assert not verify(secret="s3cret", header=header, body=body, now=time.time() + 3600)  # A replay, later.
    assert not verify(secret="s3cret", header="garbage", body=body)


def test_delivery_posts_a_signed_event_the_receiver_can_verify(receiver):
    tenant = TenantFactory()
    hook = receiver(200)
    delivery = _delivery(tenant, hook.url)

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    headers, body = hook.requests[0]
    assert verify(secret=tenant.webhook_secret, header=headers[SIGNATURE_HEADER], body=body)
    assert json.loads(body) == delivery.payload
    assert headers["X-Parla-Event"] == "batch.completed"
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)


def test_failed_delivery_raises_for_a_retry_then_succeeds(receiver):
    tenant = TenantFactory()
    hook = receiver(500, 503, 200)
    delivery = _delivery(tenant, hook.url)
    outcomes = []

    for _ in range(3):  # Dramatiq calls again after each raise, with backoff.
        try:
            webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)
            outcomes.append("ok")
        except WebhookDeliveryFailed:
            outcomes.append("retry")

    delivery.refresh_from_db()
    assert outcomes == ["retry", "retry", "ok"]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert len(hook.requests) == 3


def test_delivery_gives_up_after_its_attempts(receiver):
    tenant = TenantFactory()
    hook = receiver(*([500] * MAX_ATTEMPTS))
    delivery = _delivery(tenant, hook.url)

    for _ in range(MAX_ATTEMPTS):
        try:
            webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)
        except WebhookDeliveryFailed:
            pass
    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)  # A stray redelivery: no-op.

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.last_error == "The receiver answered 500."
    assert len(hook.requests) == MAX_ATTEMPTS


def test_delivery_to_a_private_address_is_refused_without_retrying(settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False
    tenant = TenantFactory()
    delivery = _delivery(tenant, "http://127.0.0.1:9/hook")

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "private or loopback" in delivery.last_error


@pytest.mark.parametrize("url", [
    "ftp://example.com/hook", "http://localhost/hook", "http://10.0.0.5/hook", "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data", "http://user:pw@example.com/hook", "javascript:alert(1)",
])
def test_webhook_url_validation_refuses(url, settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(WebhookUrlNotAllowed):
        webhook_url_validate(url)


def test_tenant_webhook_settings_set_read_and_rotate(api_client_for, settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True
    tenant = TenantFactory()
    client = api_client_for(tenant)
    old_secret = client.get("/api/v1/tenant/webhook").json()["secret"]

    updated = client.put("/api/v1/tenant/webhook", {"url": "http://127.0.0.1:8081/hooks"}, format="json")
    rotated = client.post("/api/v1/tenant/webhook/rotate-secret")

    assert updated.json()["url"] == "http://127.0.0.1:8081/hooks"
    assert rotated.json()["secret"] != old_secret
    tenant.refresh_from_db()
    assert (tenant.webhook_url, tenant.webhook_secret) == ("http://127.0.0.1:8081/hooks", rotated.json()["secret"])
    from tenants.models import AuditEvent

    assert {"tenant.webhook_url_changed", "tenant.webhook_secret_rotated"} <= set(
        AuditEvent.objects.for_tenant(tenant).values_list("action", flat=True))


def test_tenant_webhook_on_a_private_address_is_refused(api_client_for, settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False
    tenant = TenantFactory()

    response = api_client_for(tenant).put("/api/v1/tenant/webhook", {"url": "http://192.168.1.10/hooks"},
                                          format="json")

    assert (response.status_code, response.json()["code"]) == (400, "webhook_url_not_allowed")
    tenant.refresh_from_db()
    assert tenant.webhook_url == ""


def test_webhook_settings_need_the_batches_scope(api_client_for):
    response = api_client_for(TenantFactory(), scopes=["speech"]).get("/api/v1/tenant/webhook")

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
