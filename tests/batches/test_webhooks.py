"""Signed webhooks delivered to a real local HTTP receiver, with retries and a delivery log."""

import json
import socket
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
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True  # The receiver runs on loopback in tests,
    made = []

    def make(*statuses):
        made.append(Receiver(statuses))
        # on a port of its own, which production would refuse too.
        settings.PARLA_WEBHOOK_ALLOWED_PORTS = [*settings.PARLA_WEBHOOK_ALLOWED_PORTS, made[-1].server.server_port]
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
    assert delivery.last_error == "HTTP 500"
    assert len(hook.requests) == MAX_ATTEMPTS


def test_delivery_to_a_private_address_is_refused_without_retrying(settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False
    tenant = TenantFactory()
    delivery = _delivery(tenant, "http://127.0.0.1/hook")

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error == "address not allowed"


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
    settings.PARLA_WEBHOOK_ALLOWED_PORTS = [8081]
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


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/tenant/webhook"), ("put", "/api/v1/tenant/webhook"),
    ("post", "/api/v1/tenant/webhook/rotate-secret"),
])
def test_webhook_settings_refuse_a_key_without_the_admin_scope(api_client_for, method, path):
    tenant = TenantFactory()
    secret = tenant.webhook_secret

    response = getattr(api_client_for(tenant, scopes=["batches"]), method)(
        path, {"url": "https://example.com/hooks"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    assert set(response.json()) == {"code", "message", "extra"}
    assert secret not in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.webhook_url, tenant.webhook_secret) == ("", secret)


def test_webhook_settings_answer_a_key_with_the_admin_scope(api_client_for):
    tenant = TenantFactory()

    response = api_client_for(tenant, scopes=["admin"]).get("/api/v1/tenant/webhook")

    assert (response.status_code, response.json()["secret"]) == (200, tenant.webhook_secret)


def _signed_in(role):
    from rest_framework.test import APIClient

    from tests.tenants.factories import MembershipFactory

    membership = MembershipFactory(role=role)
    client = APIClient()
    client.force_login(membership.user)
    return membership.tenant, client


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/tenant/webhook"), ("put", "/api/v1/tenant/webhook"),
    ("post", "/api/v1/tenant/webhook/rotate-secret"),
])
def test_webhook_settings_refuse_a_members_session(method, path):
    tenant, client = _signed_in("member")
    secret = tenant.webhook_secret

    response = getattr(client, method)(path, {"url": "https://example.com/hooks"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    assert secret not in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.webhook_url, tenant.webhook_secret) == ("", secret)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_webhook_settings_answer_owners_and_admins_sessions(role):
    tenant, client = _signed_in(role)

    read = client.get("/api/v1/tenant/webhook")
    rotated = client.post("/api/v1/tenant/webhook/rotate-secret")

    assert (read.status_code, read.json()["secret"]) == (200, tenant.webhook_secret)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != tenant.webhook_secret


# --- Receivers Parla must not reach (SSRF) ----------------------------------------------------

PUBLIC_ADDRESS = "93.184.215.14"  # A globally routable address (example.com's).


@pytest.fixture
def production_defaults(settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False
    settings.PARLA_WEBHOOK_ALLOWED_PORTS = []


@pytest.fixture
def resolver(monkeypatch):
    """DNS answers per host name. Mocked: there is no DNS here, and the tests need names that
    resolve to chosen addresses (and change their answer, as a rebinding attacker's would)."""
    from tenants import outbound

    answers, calls = {}, []

    def resolve(hostname, port):
        calls.append(hostname)
        if hostname not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answers[hostname])

    monkeypatch.setattr(outbound, "resolve_host", resolve)
    resolve.answers, resolve.calls = answers, calls
    return resolve


@pytest.fixture
def connections(monkeypatch):
    """The address of every TCP connection opened during the test (Redis's included)."""
    opened = []
    connect = socket.socket.connect

    def recording_connect(sock, address):
        opened.append(tuple(address[:2]))
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    return opened


# (URL, DNS answers, the address a connection would go to)
REFUSED = {
    "shared address space": ("http://100.100.100.200/", {}, "100.100.100.200"),
    "ipv4-mapped loopback": ("http://[::ffff:127.0.0.1]/", {}, "::ffff:127.0.0.1"),
    "cloud metadata": ("http://169.254.169.254/latest/meta-data/", {}, "169.254.169.254"),
    "name resolving to a private address": ("http://intranet.example.com/hooks",
                                             {"intranet.example.com": ["10.0.0.1"]}, "10.0.0.1"),
    "name with one private answer": ("https://mixed.example.com/hooks",
                                     {"mixed.example.com": [PUBLIC_ADDRESS, "127.0.0.1"]}, "127.0.0.1"),
    "port of another service": ("http://example.com:6379/", {"example.com": [PUBLIC_ADDRESS]}, PUBLIC_ADDRESS),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_tenant_webhook_refuses_an_unreachable_receiver_when_set(
        case, api_client_for, production_defaults, resolver, connections):
    url, answers, address = case
    resolver.answers.update(answers)
    tenant = TenantFactory()

    response = api_client_for(tenant).put("/api/v1/tenant/webhook", {"url": url}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "webhook_url_not_allowed")
    assert list(response.json()["extra"]["fields"]) == ["url"]
    tenant.refresh_from_db()
    assert tenant.webhook_url == ""
    assert not [opened for opened in connections if opened[0] == address]


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_batch_webhook_refuses_an_unreachable_receiver_when_set(
        case, api_client_for, production_defaults, resolver, dispatched):
    url, answers, _address = case
    resolver.answers.update(answers)

    response = api_client_for(TenantFactory()).post(
        "/api/v1/batches", {"items": [{"text": "Hello."}], "webhook_url": url}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "webhook_url_not_allowed")
    assert list(response.json()["extra"]["fields"]) == ["webhook_url"]


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_delivery_refuses_an_unreachable_receiver_and_sends_nothing(
        case, production_defaults, resolver, connections):
    url, answers, address = case
    resolver.answers.update(answers)
    tenant = TenantFactory()
    delivery = _delivery(tenant, url)

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "failed"  # Refused for good: no retries.
    assert delivery.last_error in ("address not allowed", "port not allowed")
    assert not [opened for opened in connections if opened[0] == address]


def test_delivery_refuses_a_name_that_resolves_privately_after_it_was_set(
        api_client_for, production_defaults, resolver, connections):
    tenant = TenantFactory()
    resolver.answers["hooks.example.com"] = [PUBLIC_ADDRESS]
    set_response = api_client_for(tenant).put("/api/v1/tenant/webhook", {"url": "http://hooks.example.com/parla"},
                                              format="json")
    resolver.answers["hooks.example.com"] = ["10.0.0.1"]  # The name's owner changes its answer.
    delivery = _delivery(tenant, "http://hooks.example.com/parla")

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert set_response.status_code == 200
    assert (delivery.status, delivery.last_error) == ("failed", "address not allowed")
    assert not [opened for opened in connections if opened[0] == "10.0.0.1"]


def test_delivery_refuses_an_ipv4_mapped_loopback_receiver_that_is_listening(
        receiver, settings, connections):
    hook = receiver(200)
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False
    tenant = TenantFactory()
    delivery = _delivery(tenant, f"http://[::ffff:127.0.0.1]:{hook.server.server_port}/hooks/parla")

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "address not allowed")
    assert hook.requests == []
    assert not [opened for opened in connections if opened[1] == hook.server.server_port]


def test_delivery_connects_to_the_checked_address_with_the_original_host_header(receiver, resolver):
    hook = receiver(200)
    port = hook.server.server_port
    resolver.answers["hooks.example.com"] = ["127.0.0.1"]
    tenant = TenantFactory()
    delivery = _delivery(tenant, f"http://hooks.example.com:{port}/hooks/parla?source=parla")

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    headers, body = hook.requests[0]
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    assert headers["Host"] == f"hooks.example.com:{port}"
    assert verify(secret=tenant.webhook_secret, header=headers[SIGNATURE_HEADER], body=body)
    # Resolved once, by the check; the connection did not look the name up again (it could
    # not have: there is no DNS here).
    assert resolver.calls == ["hooks.example.com"]


def test_delivery_over_tls_sends_the_original_name_and_checks_the_certificate(receiver, resolver, settings,
                                                                             tmp_path):
    import ssl
    import subprocess

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=hooks.example.test", "-addext", "subjectAltName=DNS:hooks.example.test",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )
    server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    hook = receiver(200)
    hook.server.socket = context.wrap_socket(hook.server.socket, server_side=True)
    resolver.answers["hooks.example.test"] = ["127.0.0.1"]
    tenant = TenantFactory()
    delivery = _delivery(tenant, f"https://hooks.example.test:{hook.server.server_port}/hooks")

    with pytest.raises(WebhookDeliveryFailed):
        webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert server_names == ["hooks.example.test"]
    # A self-signed certificate is not trusted; the log names the class, not OpenSSL's words.
    assert (delivery.status, delivery.last_error) == ("pending", "TLS error")
    assert hook.requests == []


def test_delivery_log_shows_connection_refused_without_details(settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True  # A closed port on loopback.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.PARLA_WEBHOOK_ALLOWED_PORTS = [port]
    tenant = TenantFactory()
    delivery = _delivery(tenant, f"http://127.0.0.1:{port}/hooks")

    with pytest.raises(WebhookDeliveryFailed):
        webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("pending", "connection refused")


def test_delivery_log_shows_a_timeout_without_details(settings, monkeypatch):
    from batches import webhooks

    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True  # A silent receiver on loopback.
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings.PARLA_WEBHOOK_ALLOWED_PORTS = [port]
        tenant = TenantFactory()
        delivery = _delivery(tenant, f"http://127.0.0.1:{port}/hooks")

        with pytest.raises(WebhookDeliveryFailed):
            webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("pending", "timeout")


@pytest.mark.parametrize(("address", "allowed"), [
    (PUBLIC_ADDRESS, True),
    ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ("100.64.0.1", False),
    ("10.0.0.1", False),
    ("127.0.0.1", False),
    ("169.254.169.254", False),
    ("0.0.0.0", False),
    ("224.0.0.1", False),
    ("::1", False),
    ("fd00::1", False),
    ("fe80::1", False),
    ("::ffff:127.0.0.1", False),
    ("::ffff:10.0.0.1", False),
    ("::ffff:169.254.169.254", False),
    ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
    ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
])
def test_address_allowed_only_for_globally_routable_addresses(address, allowed, production_defaults):
    from tenants.outbound import address_allowed

    assert address_allowed(address) is allowed


@pytest.mark.parametrize(("address", "allowed"), [
    ("10.0.0.1", True), ("::ffff:127.0.0.1", True), ("169.254.169.254", False), ("fe80::1", False),
    ("0.0.0.0", False),
])
def test_address_allowed_on_private_networks_still_refuses_link_local(address, allowed, settings):
    from tenants.outbound import address_allowed

    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True

    assert address_allowed(address) is allowed


def test_webhook_url_validation_takes_the_operators_extra_ports(production_defaults, resolver, settings):
    resolver.answers["hooks.example.com"] = [PUBLIC_ADDRESS]
    settings.PARLA_WEBHOOK_ALLOWED_PORTS = [8443]

    assert webhook_url_validate("https://hooks.example.com:8443/parla") == "https://hooks.example.com:8443/parla"
    with pytest.raises(WebhookUrlNotAllowed):
        webhook_url_validate("https://hooks.example.com:8444/parla")


def test_delivery_tries_the_next_checked_address_when_one_cannot_connect(receiver, resolver):
    hook = receiver(200)
    resolver.answers["hooks.example.com"] = ["127.0.0.2", "127.0.0.1"]  # Nothing listens on the first.
    tenant = TenantFactory()
    delivery = _delivery(tenant, f"http://hooks.example.com:{hook.server.server_port}/hooks/parla")

    webhook_deliver_execute(tenant_id=tenant.pk, delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert len(hook.requests) == 1
