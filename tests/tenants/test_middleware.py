"""TenantMiddleware names the tenant of server-rendered pages through tenant_for_request, the
one lookup the API base class and the dashboard pages use."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

import tenants.middleware
from tenants.authentication import SESSION_TENANT_KEY, tenant_for_request
from tenants.middleware import TenantMiddleware
from tenants.models import Tenant
from tests.helpers import signed_in_client
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _request(user, tenant_id=None):
    request = RequestFactory().get("/app/")
    request.user = user
    request.session = SessionStore()
    if tenant_id is not None:
        request.session[SESSION_TENANT_KEY] = tenant_id
    TenantMiddleware(lambda r: None)(request)
    return request


def test_tenant_middleware_asks_tenant_for_request(monkeypatch):
    membership = MembershipFactory()
    calls = []

    def spy(request, **kwargs):
        calls.append(kwargs)
        return tenant_for_request(request, **kwargs)

    monkeypatch.setattr(tenants.middleware, "tenant_for_request", spy)

    request = _request(membership.user)

    assert request.tenant == membership.tenant
    assert calls == [{"allow_suspended": True}]


def test_tenant_middleware_takes_the_sessions_chosen_tenant_only_if_the_user_belongs():
    first = MembershipFactory()
    second = MembershipFactory(user=first.user)
    stranger = MembershipFactory()

    chosen = _request(first.user, tenant_id=second.tenant_id)
    foreign = _request(first.user, tenant_id=stranger.tenant_id)

    assert chosen.tenant == second.tenant
    assert foreign.tenant == first.tenant


def test_tenant_middleware_gives_visitors_and_users_without_a_workspace_no_tenant():
    anonymous = _request(AnonymousUser())
    homeless = _request(UserFactory())

    assert not anonymous.tenant
    assert not homeless.tenant


def test_tenant_middleware_still_names_a_suspended_workspace():
    membership = MembershipFactory(tenant__status=Tenant.Status.SUSPENDED)

    request = _request(membership.user)

    assert request.tenant == membership.tenant


def test_dashboard_page_shows_the_middlewares_tenant_in_the_switcher():
    first = MembershipFactory(tenant__name="First Co")
    MembershipFactory(user=first.user, tenant__name="Second Co")

    page = signed_in_client(first).get("/app/speak/").content.decode()

    assert "First Co" in page and "Second Co" in page
