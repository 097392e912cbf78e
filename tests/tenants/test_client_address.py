"""The client address behind a proxy (config.client_address): what the sign-in limits, audit
events and /metrics count and check.

Sign-in counters live in Redis for the whole test session, so every test signs in from
addresses of its own.
"""

import ipaddress
import itertools
import random
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import AuditEvent, Membership
from tests.helpers import signed_in_client
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PROXY = "10.9.8.7"
TRUSTED = [ipaddress.ip_network("10.9.8.0/24")]
# 198.18.0.0/15 (benchmarking): never loopback, a private network or a trusted proxy here.
_BASE = ipaddress.IPv4Address("198.18.0.0")
_next = itertools.count(random.randrange(0, 2**17 - 10_000))


def _address() -> str:
    return str(_BASE + next(_next))


@pytest.fixture(autouse=True)
def one_window(monkeypatch):
    # django-ratelimit counts in fixed one-minute windows; 31 sign-ins on a slow machine can
    # straddle a window's end and start counting again. One window for each whole test.
    monkeypatch.setattr("django_ratelimit.core._get_window", lambda value, period: 1_800_000_000)


def _sign_in(client: Client, *, username: str | None = None, **meta) -> int:
    username = username or f"{uuid.uuid4().hex}@example.test"  # a fresh account: only the address counts
    return client.post("/accounts/login/", {"username": username, "password": "wrong"}, **meta).status_code


def test_client_address_sign_in_behind_a_trusted_proxy_limits_the_forwarded_address(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    client, forwarded = Client(), _address()

    # What the client writes left of the proxy's own entry changes on every attempt.
    statuses = [
        _sign_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{_address()}, {forwarded}")
        for _ in range(31)
    ]

    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429


def test_client_address_sign_in_behind_a_trusted_proxy_gives_each_forwarded_address_its_budget(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    client, first, second = Client(), _address(), _address()
    for _ in range(30):
        _sign_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=first)

    limited = _sign_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=first)
    other = _sign_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=second)

    assert (limited, other) == (429, 200)


def test_client_address_sign_in_skips_trusted_proxies_in_the_forwarded_chain(settings):
    # Two proxies in a row: the client is the right-most address that is not one of them.
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    client, forwarded = Client(), _address()
    for _ in range(30):
        _sign_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forwarded}, 10.9.8.20")

    through_one_proxy = _sign_in(client, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)

    assert through_one_proxy == 429


def test_client_address_sign_in_without_trusted_proxies_ignores_x_forwarded_for(settings):
    settings.PARLA_TRUSTED_PROXIES = []
    client, peer = Client(), _address()

    statuses = [_sign_in(client, REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=_address()) for _ in range(31)]

    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429


def test_client_address_sign_in_from_an_untrusted_peer_ignores_x_forwarded_for(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    client, peer = Client(), _address()

    statuses = [_sign_in(client, REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=_address()) for _ in range(31)]

    assert statuses[30] == 429


def test_sign_in_account_limit_ignores_case_and_surrounding_spaces():
    user = UserFactory(username=f"alice-{uuid.uuid4().hex[:8]}@x.test")
    variants = [user.email.capitalize().replace("@x.test", "@X.TEST"), f"  {user.email}  ", user.email.upper()]
    client = Client()

    statuses = [
        _sign_in(client, username=variants[attempt % 3], REMOTE_ADDR=_address()) for attempt in range(11)
    ]

    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_sign_in_account_limit_still_lets_the_right_password_in_before_the_limit():
    membership = MembershipFactory()
    client = Client()
    for _ in range(9):
        _sign_in(client, username=membership.user.email.upper(), REMOTE_ADDR=_address())

    response = client.post("/accounts/login/", {"username": membership.user.email, "password": "pw-for-tests-1"},
                           REMOTE_ADDR=_address())

    assert response.status_code == 302


def test_client_address_is_recorded_on_audit_events_behind_a_trusted_proxy(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    owner = MembershipFactory(role=Membership.Role.OWNER)
    forwarded = _address()

    signed_in_client(owner).post("/app/keys/", {"name": "behind the proxy", "scopes": ["speech"]},
                                 REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"203.0.113.50, {forwarded}")

    event = AuditEvent.objects.for_tenant(owner.tenant).get(action="api_key.created")
    assert event.ip_address == forwarded


def test_client_address_of_an_untrusted_peer_is_recorded_on_audit_events(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    owner = MembershipFactory(role=Membership.Role.OWNER)
    peer = _address()

    signed_in_client(owner).post("/app/keys/", {"name": "direct", "scopes": ["speech"]},
                                 REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR="203.0.113.50")

    event = AuditEvent.objects.for_tenant(owner.tenant).get(action="api_key.created")
    assert event.ip_address == peer


def test_client_address_decides_the_metrics_network_check_behind_a_trusted_proxy(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    settings.PARLA_METRICS_ALLOWED_NETWORKS = ["192.168.50.0/24"]

    inside = APIClient().get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.168.50.3")
    outside = APIClient().get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    forged = APIClient().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="192.168.50.3")

    assert (inside.status_code, outside.status_code, forged.status_code) == (200, 404, 404)


def test_client_address_forwarded_garbage_falls_back_to_the_proxy(settings):
    settings.PARLA_TRUSTED_PROXIES = TRUSTED
    settings.PARLA_METRICS_ALLOWED_NETWORKS = ["10.9.8.0/24"]

    response = APIClient().get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.168.50.3, not-an-address")

    assert response.status_code == 200  # the proxy's own address: nothing left of garbage is believed
