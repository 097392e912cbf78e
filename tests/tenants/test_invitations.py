"""Inviting people to a workspace from the Settings page, and the link's page where the invited
person (and only they) accepts.

Nobody joins without accepting, and the inviting page reads the same whether or not the
address has an account. Mail goes to Django's locmem outbox (config/settings/test.py).
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tenants.authentication import SESSION_TENANT_KEY
from tenants.models import AuditEvent, Invitation, Membership, User
from tests.helpers import signed_in_client
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/app/invitations/[^/\s]+/)")


@pytest.fixture
def owner():
    return MembershipFactory(role=Membership.Role.OWNER, tenant__name="Acme Audio")


@pytest.fixture
def owner_client(owner):
    return signed_in_client(owner)


def _invite(owner_client, email: str, role: str = "member"):
    return owner_client.post("/app/settings/members", {"email": email, "role": role}, follow=True)


def _link(index: int = -1) -> str:
    return LINK.search(mail.outbox[index].body).group(1)


def _success_message(response) -> str:
    return re.search(r'class="alert alert-success">.*?<span>(.*?)</span>', response.content.decode(), re.S).group(1)


# --- Inviting ---------------------------------------------------------------------------------


def test_member_add_of_a_new_address_invites_and_adds_nobody(owner, owner_client):
    response = _invite(owner_client, "New.Person@Example.test", "admin")

    invitation = Invitation.objects.for_tenant(owner.tenant).get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.person@example.test", "admin", owner.user,
    )
    assert not User.objects.filter(email__iexact="new.person@example.test").exists()
    assert Membership.objects.for_tenant(owner.tenant).count() == 1
    assert "If new.person@example.test can receive e-mail, we sent it an invitation" in response.content.decode()
    assert mail.outbox[0].to == ["new.person@example.test"]
    assert "Acme Audio" in mail.outbox[0].subject
    assert _link() in mail.outbox[0].body


def test_member_add_of_an_existing_account_invites_and_adds_nobody(owner, owner_client):
    existing = MembershipFactory(user__username="known@example.test").user

    _invite(owner_client, "known@example.test")

    assert not Membership.objects.for_tenant(owner.tenant).filter(user=existing).exists()
    assert Invitation.objects.for_tenant(owner.tenant).get().email == "known@example.test"
    assert mail.outbox[0].to == ["known@example.test"]


def test_member_add_reads_the_same_whether_or_not_the_address_has_an_account(owner, owner_client):
    UserFactory(username="known@example.test")

    known = _invite(owner_client, "known@example.test")
    unknown = _invite(owner_client, "unknown@example.test")

    assert known.status_code == unknown.status_code == 200
    assert _success_message(known).replace("known@", "X@") == _success_message(unknown).replace("unknown@", "X@")
    assert mail.outbox[0].body.replace("known@", "X@").split("/app/invitations/")[0] == (
        mail.outbox[1].body.replace("unknown@", "X@").split("/app/invitations/")[0])


def test_member_add_is_audited_with_the_address_and_role(owner, owner_client):
    _invite(owner_client, "new@example.test", "admin")

    event = AuditEvent.objects.for_tenant(owner.tenant).get(action="invitation.created")
    assert event.actor_user == owner.user
    assert event.extra == {"email": "new@example.test", "role": "admin"}


def test_member_add_stores_only_a_hash_of_the_link(owner, owner_client):
    _invite(owner_client, "new@example.test")

    token = _link().rstrip("/").rsplit("/", 1)[-1]
    assert token not in Invitation.objects.for_tenant(owner.tenant).get().token_hash


def test_member_add_again_renews_the_invitation(owner, owner_client):
    _invite(owner_client, "new@example.test", "member")
    first = _link(0)
    _invite(owner_client, "new@example.test", "admin")

    assert Invitation.objects.for_tenant(owner.tenant).get().role == "admin"
    assert Client().get(first).status_code == 404
    assert Client().get(_link(1)).status_code == 200


def test_settings_lists_invitations_not_accepted_yet(owner, owner_client):
    _invite(owner_client, "pending@example.test")

    page = owner_client.get("/app/settings/").content.decode()

    assert 'data-invitation="pending@example.test"' in page


def test_member_cannot_invite():
    member = MembershipFactory(role=Membership.Role.MEMBER)

    response = signed_in_client(member).post("/app/settings/members", {"email": "x@example.test", "role": "member"})

    assert response.status_code == 403
    assert not Invitation.objects.for_tenant(member.tenant).exists()
    assert mail.outbox == []


# --- Accepting --------------------------------------------------------------------------------


def test_invitation_accept_by_the_invited_user_adds_them(owner, owner_client):
    invited = MembershipFactory(user__username="known@example.test").user
    _invite(owner_client, "Known@Example.test", "admin")
    client = Client()
    client.force_login(invited)

    page = client.get(_link())
    response = client.post(_link(), REMOTE_ADDR="198.51.100.4")

    assert "Accept and join Acme Audio" in page.content.decode()
    assert response.status_code == 302 and response["Location"] == "/app/"
    assert Membership.objects.for_tenant(owner.tenant).get(user=invited).role == "admin"
    assert client.session[SESSION_TENANT_KEY] == owner.tenant.pk
    invitation = Invitation.objects.for_tenant(owner.tenant).get()
    assert (invitation.accepted_by, invitation.accepted_at is not None) == (invited, True)
    event = AuditEvent.objects.for_tenant(owner.tenant).get(action="invitation.accepted")
    assert (event.actor_user, event.ip_address) == (invited, "198.51.100.4")
    assert AuditEvent.objects.for_tenant(owner.tenant).filter(action="membership.created").exists()


def test_invitation_accept_refuses_another_signed_in_user(owner, owner_client):
    UserFactory(username="known@example.test")
    someone_else = MembershipFactory().user
    _invite(owner_client, "known@example.test")
    client = Client()
    client.force_login(someone_else)

    page = client.get(_link())
    posted = client.post(_link())

    assert page.status_code == posted.status_code == 403
    assert "This invitation is for another account" in posted.content.decode()
    assert not Membership.objects.for_tenant(owner.tenant).filter(user=someone_else).exists()
    assert Invitation.objects.for_tenant(owner.tenant).get().accepted_at is None


def test_invitation_link_sends_an_existing_account_to_sign_in_first(owner, owner_client):
    UserFactory(username="known@example.test")
    _invite(owner_client, "known@example.test")

    response = Client().get(_link())

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={_link()}"


def test_invitation_accept_creates_the_account_of_a_new_address(owner, owner_client):
    _invite(owner_client, "new.person@example.test", "admin")
    client = Client()

    page = client.get(_link())
    response = client.post(_link(), {"new_password1": "A-much-better-one-42", "new_password2": "A-much-better-one-42"})

    user = User.objects.get(email="new.person@example.test")
    assert "Choose a password" in page.content.decode()
    assert response.status_code == 302 and response["Location"] == "/app/"
    assert user.check_password("A-much-better-one-42")
    assert Membership.objects.for_tenant(owner.tenant).get(user=user).role == "admin"
    assert "Acme Audio" in client.get("/app/speak/").content.decode()  # signed in, in the new workspace
    assert AuditEvent.objects.for_tenant(owner.tenant).get(action="invitation.accepted").actor_user == user


def test_invitation_new_account_explains_a_bad_password(owner, owner_client):
    _invite(owner_client, "new.person@example.test")

    response = Client().post(_link(), {"new_password1": "A-much-better-one-42", "new_password2": "different-42"})

    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.content.decode()
    assert not User.objects.filter(email="new.person@example.test").exists()


def test_invitation_link_works_once(owner, owner_client):
    invited = UserFactory(username="known@example.test")
    _invite(owner_client, "known@example.test")
    client = Client()
    client.force_login(invited)
    client.post(_link())

    again = client.post(_link())

    assert again.status_code == 404
    assert "This invitation no longer works" in again.content.decode()
    assert Membership.objects.for_tenant(owner.tenant).filter(user=invited).count() == 1


def test_invitation_link_expires(owner, owner_client):
    invited = UserFactory(username="known@example.test")
    _invite(owner_client, "known@example.test")
    Invitation.objects.for_tenant(owner.tenant).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = Client()
    client.force_login(invited)

    response = client.post(_link())

    assert response.status_code == 404
    assert not Membership.objects.for_tenant(owner.tenant).filter(user=invited).exists()


def test_invitation_link_with_an_unknown_token_is_not_found():
    response = Client().get("/app/invitations/not-a-token/")

    assert response.status_code == 404


# --- Withdrawing ------------------------------------------------------------------------------


def test_invitation_revoke_makes_the_link_stop_working(owner, owner_client):
    _invite(owner_client, "new@example.test")
    invitation = Invitation.objects.for_tenant(owner.tenant).get()

    owner_client.post(f"/app/settings/invitations/{invitation.pk}/revoke")

    assert Client().get(_link()).status_code == 404
    assert not Invitation.objects.for_tenant(owner.tenant).exists()
    assert AuditEvent.objects.for_tenant(owner.tenant).filter(action="invitation.revoked").exists()


def test_invitation_revoke_of_another_tenants_invitation_is_not_found(owner_client):
    theirs = MembershipFactory(role=Membership.Role.OWNER)
    _invite(signed_in_client(theirs), "new@example.test")
    invitation = Invitation.objects.for_tenant(theirs.tenant).get()

    response = owner_client.post(f"/app/settings/invitations/{invitation.pk}/revoke")

    assert response.status_code == 404
    assert Invitation.objects.for_tenant(theirs.tenant).exists()
