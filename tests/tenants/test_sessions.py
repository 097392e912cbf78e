"""Dashboard users reach the API with their session; their role decides their scopes."""

import pytest
from rest_framework.test import APIClient

from tenants.authentication import SESSION_TENANT_KEY
from tests.tenants.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_session_user_reads_their_tenant():
    membership = MembershipFactory(role="member")

    response = _signed_in(membership.user).get("/api/v1/tenant")

    assert response.status_code == 200
    assert response.json()["slug"] == membership.tenant.slug


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 200), ("member", 403)])
def test_session_keys_follow_the_role(role, status):
    membership = MembershipFactory(role=role)

    response = _signed_in(membership.user).get("/api/v1/keys")

    assert response.status_code == status
    if status == 403:
        assert response.json()["code"] == "insufficient_scope"


def test_session_user_without_membership_gets_no_tenant():
    response = _signed_in(UserFactory()).get("/api/v1/tenant")

    assert response.status_code == 403
    assert response.json()["code"] == "no_tenant"


def test_session_tenant_switch_only_to_tenants_the_user_belongs_to():
    first = MembershipFactory()
    second = MembershipFactory(user=first.user)
    stranger = TenantFactory()
    client = _signed_in(first.user)

    session = client.session
    session[SESSION_TENANT_KEY] = second.tenant.pk
    session.save()
    switched = client.get("/api/v1/tenant").json()["slug"]
    session[SESSION_TENANT_KEY] = stranger.pk
    session.save()
    refused = client.get("/api/v1/tenant").json()["slug"]

    assert switched == second.tenant.slug
    assert refused == first.tenant.slug


def test_session_post_needs_csrf():
    membership = MembershipFactory(role="owner")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(membership.user)

    response = client.post("/api/v1/keys", {"name": "x"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_session_of_suspended_tenant_is_refused():
    membership = MembershipFactory(tenant__status="suspended")

    response = _signed_in(membership.user).get("/api/v1/tenant")

    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"
