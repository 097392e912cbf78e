"""Role rules live in the services: whoever calls them (a page, the API, a command) gets the
same answer. These tests call the services directly with an acting membership.

Owners and admins manage members, invitations and keys; only owners make, unmake, remove or
invite owners; nobody changes or removes themselves; a tenant always keeps an owner. `actor=None`
is a command or an operator, which only the last-owner rule binds.
"""

import pytest
from rest_framework.test import APIClient

from tenants.errors import ErrorCode, Forbidden, InvalidState
from tenants.models import ApiKey, Invitation, Membership
from tenants.services import (
    api_key_create,
    api_key_revoke,
    invitation_create,
    invitation_revoke,
    membership_create,
    membership_delete,
    membership_role_change,
)
from tests.tenants.factories import ApiKeyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

OWNER, ADMIN, MEMBER = Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.MEMBER


@pytest.fixture
def owner():
    return MembershipFactory(role=OWNER)


def _member(owner, role):
    return MembershipFactory(tenant=owner.tenant, role=role)


def _role(membership) -> str | None:
    return Membership.objects.for_tenant(membership.tenant_id).filter(pk=membership.pk).values_list(
        "role", flat=True).first()


# --- The error shape -----------------------------------------------------------------------


def test_a_refused_role_is_forbidden_and_a_broken_rule_is_an_invalid_state(owner):
    admin = _member(owner, ADMIN)

    with pytest.raises(Forbidden) as refused:
        membership_delete(tenant=owner.tenant, actor=admin, membership=owner)
    with pytest.raises(InvalidState) as broken:
        membership_delete(tenant=owner.tenant, actor=None, membership=owner)

    assert (refused.value.code, refused.value.status) == (ErrorCode.PERMISSION_DENIED, 403)
    assert (broken.value.code, broken.value.status) == (ErrorCode.INVALID_STATE, 409)


# --- Role changes -------------------------------------------------------------------------


def test_membership_role_change_lets_an_owner_make_an_owner(owner):
    admin = _member(owner, ADMIN)

    membership_role_change(tenant=owner.tenant, actor=owner, membership=admin, role=OWNER)

    assert _role(admin) == OWNER


def test_membership_role_change_lets_an_admin_promote_a_member_to_admin(owner):
    admin, member = _member(owner, ADMIN), _member(owner, MEMBER)

    membership_role_change(tenant=owner.tenant, actor=admin, membership=member, role=ADMIN)

    assert _role(member) == ADMIN


def test_membership_role_change_refuses_an_admin_making_an_owner(owner):
    admin, member = _member(owner, ADMIN), _member(owner, MEMBER)

    with pytest.raises(Forbidden, match="Only an owner can make someone owner"):
        membership_role_change(tenant=owner.tenant, actor=admin, membership=member, role=OWNER)

    assert _role(member) == MEMBER


def test_membership_role_change_refuses_an_admin_demoting_an_owner(owner):
    admin = _member(owner, ADMIN)
    second_owner = _member(owner, OWNER)

    with pytest.raises(Forbidden, match="change an owner's role"):
        membership_role_change(tenant=owner.tenant, actor=admin, membership=second_owner, role=MEMBER)

    assert _role(second_owner) == OWNER


def test_membership_role_change_refuses_a_member(owner):
    member, other = _member(owner, MEMBER), _member(owner, MEMBER)

    with pytest.raises(Forbidden, match="Only owners and admins"):
        membership_role_change(tenant=owner.tenant, actor=member, membership=other, role=ADMIN)

    assert _role(other) == MEMBER


def test_membership_role_change_refuses_your_own_role(owner):
    _member(owner, OWNER)

    with pytest.raises(InvalidState, match="your own role"):
        membership_role_change(tenant=owner.tenant, actor=owner, membership=owner, role=MEMBER)

    assert _role(owner) == OWNER


def test_membership_role_change_keeps_the_last_owner_even_for_an_operator(owner):
    with pytest.raises(InvalidState, match="at least one owner"):
        membership_role_change(tenant=owner.tenant, actor=None, membership=owner, role=ADMIN)

    assert _role(owner) == OWNER


def test_membership_role_change_reads_the_actors_role_afresh(owner):
    admin, member = _member(owner, ADMIN), _member(owner, MEMBER)
    stale = Membership.objects.for_tenant(owner.tenant).get(pk=admin.pk)
    membership_role_change(tenant=owner.tenant, actor=owner, membership=admin, role=MEMBER)

    with pytest.raises(Forbidden):
        membership_role_change(tenant=owner.tenant, actor=stale, membership=member, role=ADMIN)

    assert stale.role == ADMIN  # the object the page held still says admin
    assert _role(member) == MEMBER


def test_membership_role_change_refuses_an_actor_from_another_tenant(owner):
    member = _member(owner, MEMBER)
    stranger = MembershipFactory(role=OWNER)

    with pytest.raises(Forbidden, match="not a member of this workspace"):
        membership_role_change(tenant=owner.tenant, actor=stranger, membership=member, role=ADMIN)

    assert _role(member) == MEMBER


# --- Removals -----------------------------------------------------------------------------


def test_membership_delete_lets_an_admin_remove_a_member(owner):
    admin, member = _member(owner, ADMIN), _member(owner, MEMBER)

    membership_delete(tenant=owner.tenant, actor=admin, membership=member)

    assert _role(member) is None


def test_membership_delete_refuses_an_admin_removing_an_owner(owner):
    admin = _member(owner, ADMIN)
    second_owner = _member(owner, OWNER)

    with pytest.raises(Forbidden, match="Only an owner can remove an owner"):
        membership_delete(tenant=owner.tenant, actor=admin, membership=second_owner)

    assert _role(second_owner) == OWNER


def test_membership_delete_lets_an_owner_remove_another_owner(owner):
    second_owner = _member(owner, OWNER)

    membership_delete(tenant=owner.tenant, actor=owner, membership=second_owner)

    assert _role(second_owner) is None


def test_membership_delete_refuses_a_member(owner):
    member, other = _member(owner, MEMBER), _member(owner, MEMBER)

    with pytest.raises(Forbidden, match="Only owners and admins"):
        membership_delete(tenant=owner.tenant, actor=member, membership=other)

    assert _role(other) == MEMBER


def test_membership_delete_refuses_removing_yourself(owner):
    admin = _member(owner, ADMIN)

    with pytest.raises(InvalidState, match="cannot remove yourself"):
        membership_delete(tenant=owner.tenant, actor=admin, membership=admin)

    assert _role(admin) == ADMIN


def test_membership_delete_keeps_the_last_owner_even_for_an_operator(owner):
    with pytest.raises(InvalidState, match="at least one owner"):
        membership_delete(tenant=owner.tenant, actor=None, membership=owner)

    assert _role(owner) == OWNER


# --- Adding members and invitations -----------------------------------------------------------


def test_membership_create_refuses_an_admin_adding_an_owner(owner):
    admin = _member(owner, ADMIN)
    user = UserFactory()

    with pytest.raises(Forbidden, match="Only an owner can make someone owner"):
        membership_create(tenant=owner.tenant, actor=admin, user=user, role=OWNER)

    assert not Membership.objects.for_tenant(owner.tenant).filter(user=user).exists()


def test_membership_create_refuses_a_member(owner):
    member = _member(owner, MEMBER)
    user = UserFactory()

    with pytest.raises(Forbidden):
        membership_create(tenant=owner.tenant, actor=member, user=user, role=MEMBER)

    assert not Membership.objects.for_tenant(owner.tenant).filter(user=user).exists()


def test_invitation_create_refuses_an_admin_inviting_an_owner(owner):
    admin = _member(owner, ADMIN)

    with pytest.raises(Forbidden, match="Only an owner can invite an owner"):
        invitation_create(tenant=owner.tenant, actor=admin, email="boss@example.test", role=OWNER)

    assert not Invitation.objects.for_tenant(owner.tenant).exists()


def test_invitation_create_lets_an_owner_invite_an_owner(owner):
    created = invitation_create(tenant=owner.tenant, actor=owner, email="boss@example.test", role=OWNER)

    assert created.invitation.role == OWNER


def test_invitation_create_refuses_a_member(owner):
    member = _member(owner, MEMBER)

    with pytest.raises(Forbidden, match="Only owners and admins can invite members"):
        invitation_create(tenant=owner.tenant, actor=member, email="friend@example.test", role=MEMBER)

    assert not Invitation.objects.for_tenant(owner.tenant).exists()


def test_invitation_revoke_refuses_an_admin_withdrawing_an_owners_invitation(owner):
    admin = _member(owner, ADMIN)
    invitation = invitation_create(tenant=owner.tenant, actor=owner, email="boss@example.test", role=OWNER).invitation

    with pytest.raises(Forbidden, match="Only an owner can withdraw"):
        invitation_revoke(tenant=owner.tenant, actor=admin, invitation=invitation)

    assert Invitation.objects.for_tenant(owner.tenant).filter(pk=invitation.pk).exists()


def test_invitation_revoke_lets_an_admin_withdraw_a_members_invitation(owner):
    admin = _member(owner, ADMIN)
    invitation = invitation_create(tenant=owner.tenant, actor=owner, email="friend@example.test").invitation

    invitation_revoke(tenant=owner.tenant, actor=admin, invitation=invitation)

    assert not Invitation.objects.for_tenant(owner.tenant).exists()


# --- API keys -----------------------------------------------------------------------------


def test_api_key_create_refuses_a_member(owner):
    member = _member(owner, MEMBER)

    with pytest.raises(Forbidden, match="Only owners and admins can manage API keys"):
        api_key_create(tenant=owner.tenant, actor=member, name="sneaky")

    assert not ApiKey.objects.for_tenant(owner.tenant).exists()


def test_api_key_create_lets_an_admin_create_a_key(owner):
    admin = _member(owner, ADMIN)

    created = api_key_create(tenant=owner.tenant, actor=admin, name="ci")

    assert created.api_key.tenant_id == owner.tenant_id


def test_api_key_revoke_refuses_a_member(owner):
    member = _member(owner, MEMBER)
    api_key = ApiKeyFactory.create(tenant=owner.tenant)

    with pytest.raises(Forbidden):
        api_key_revoke(tenant=owner.tenant, actor=member, api_key=api_key)

    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_api_key_revoke_refuses_an_actor_from_another_tenant(owner):
    api_key = ApiKeyFactory.create(tenant=owner.tenant)
    stranger = MembershipFactory(role=OWNER)

    with pytest.raises(Forbidden):
        api_key_revoke(tenant=owner.tenant, actor=stranger, api_key=api_key)

    api_key.refresh_from_db()
    assert api_key.revoked_at is None


# --- The API passes the acting membership -------------------------------------------------------


def _session_client(membership) -> APIClient:
    client = APIClient()
    client.force_login(membership.user)
    return client


def test_api_key_create_over_a_session_works_for_an_admin(owner):
    admin = _member(owner, ADMIN)

    response = _session_client(admin).post("/api/v1/keys", {"name": "from-session"}, format="json")

    assert response.status_code == 201
    assert ApiKey.objects.for_tenant(owner.tenant).filter(name="from-session").exists()


def test_api_key_create_over_a_session_is_refused_to_a_member(owner):
    member = _member(owner, MEMBER)

    response = _session_client(member).post("/api/v1/keys", {"name": "from-session"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] in {"insufficient_scope", "permission_denied"}
    assert not ApiKey.objects.for_tenant(owner.tenant).exists()
