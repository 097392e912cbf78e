"""Dashboard pages of tenants/: API keys, settings, the workspace switcher.

Roles are enforced server-side (403 page for members), another tenant's ids answer 404
exactly like unknown ones, and every form shows its problems in words.
"""

import pytest
from django.test import Client

from tenants.authentication import SESSION_TENANT_KEY
from tenants.errors import InvalidState
from tenants.models import ApiKey, AuditEvent, Membership, Tenant, User
from tenants.services import membership_delete, membership_role_change
from tests.helpers import signed_in_client
from tests.tenants.factories import ApiKeyFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

MANAGER_PAGES = ["/app/keys/", "/app/settings/"]


@pytest.fixture
def owner():
    return MembershipFactory(role=Membership.Role.OWNER)


@pytest.fixture
def owner_client(owner):
    return signed_in_client(owner)


# --- Access -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*MANAGER_PAGES, "/app/speak/"])
def test_dashboard_pages_send_visitors_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_manager_pages_are_forbidden_to_members(url):
    member = MembershipFactory(role=Membership.Role.MEMBER)

    response = signed_in_client(member).get(url)

    assert response.status_code == 403
    assert "You don’t have access to this page" in response.content.decode()


@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_manager_pages_open_for_owners_and_admins(url, role):
    response = signed_in_client(MembershipFactory(role=role)).get(url)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/app/keys/", {"name": "sneaky", "scopes": ["speech"]}),
        ("/app/settings/members", {"email": "friend@example.test", "role": "owner"}),
        ("/app/settings/webhook", {"url": "https://example.com/hook"}),
        ("/app/settings/webhook/rotate-secret", {}),
    ],
)
def test_manager_actions_are_forbidden_to_members(url, data):
    member = MembershipFactory(role=Membership.Role.MEMBER)
    secret = member.tenant.webhook_secret

    response = signed_in_client(member).post(url, data)

    member.tenant.refresh_from_db()
    assert response.status_code == 403
    assert not ApiKey.objects.for_tenant(member.tenant).exists()
    assert Membership.objects.for_tenant(member.tenant).count() == 1
    assert (member.tenant.webhook_url, member.tenant.webhook_secret) == ("", secret)


def test_member_cannot_revoke_a_key_of_their_own_tenant():
    member = MembershipFactory(role=Membership.Role.MEMBER)
    api_key = ApiKeyFactory.create(tenant=member.tenant)

    response = signed_in_client(member).post(f"/app/keys/{api_key.pk}/revoke")

    api_key.refresh_from_db()
    assert response.status_code == 403
    assert api_key.revoked_at is None


def test_navigation_hides_keys_and_settings_from_members():
    member = MembershipFactory(role=Membership.Role.MEMBER)

    page = signed_in_client(member).get("/app/speak/").content.decode()

    assert 'href="/app/speak/"' in page
    assert 'href="/app/keys/"' not in page
    assert 'href="/app/settings/"' not in page


def test_navigation_shows_keys_and_settings_to_admins():
    admin = MembershipFactory(role=Membership.Role.ADMIN)

    page = signed_in_client(admin).get("/app/speak/").content.decode()

    assert 'href="/app/keys/"' in page
    assert 'href="/app/settings/"' in page


def test_user_without_a_workspace_sees_an_explanation():
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/app/speak/")

    assert response.status_code == 403
    assert "No workspace yet" in response.content.decode()


def test_suspended_workspace_is_explained():
    membership = MembershipFactory(tenant__status=Tenant.Status.SUSPENDED)

    response = signed_in_client(membership).get("/app/keys/")

    assert response.status_code == 403
    assert "This workspace is suspended" in response.content.decode()


def test_dashboard_forms_require_csrf(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)

    response = client.post("/app/keys/", {"name": "no-token", "scopes": ["speech"]})

    assert response.status_code == 403
    assert not ApiKey.objects.for_tenant(owner.tenant).exists()


# --- API keys ---------------------------------------------------------------------------


def test_key_create_shows_the_secret_once(owner, owner_client):
    response = owner_client.post("/app/keys/", {"name": "ci", "scopes": ["speech", "usage"]})

    api_key = ApiKey.objects.for_tenant(owner.tenant).get()
    page = response.content.decode()
    secret = page.split('id="new-key-secret" class="mono" type="text" value="')[1].split('"')[0]
    later = owner_client.get("/app/keys/").content.decode()
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert secret.startswith(api_key.prefix)
    assert api_key.scopes == ["speech", "usage"] and api_key.created_by == owner.user
    assert secret not in later
    assert api_key.prefix in later


def test_key_page_offers_the_admin_scope_unchecked(owner_client):
    page = owner_client.get("/app/keys/").content.decode()

    admin_box = page.split('value="admin"')[0].rsplit("<input", 1)[1] + page.split('value="admin"')[1].split(">")[0]
    assert "Manage tenant settings (webhooks)" in page
    assert "checked" not in admin_box


def test_key_created_with_the_admin_scope_reads_the_webhook_settings(owner, owner_client):
    page = owner_client.post("/app/keys/", {"name": "ops", "scopes": ["admin"]}).content.decode()
    secret = page.split('id="new-key-secret" class="mono" type="text" value="')[1].split('"')[0]

    response = Client().get("/api/v1/tenant/webhook", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert (response.status_code, response.json()["secret"]) == (200, owner.tenant.webhook_secret)


def test_key_created_on_the_page_authenticates_the_api(owner_client):
    page = owner_client.post("/app/keys/", {"name": "ci", "scopes": ["usage"]}).content.decode()
    secret = page.split('id="new-key-secret" class="mono" type="text" value="')[1].split('"')[0]

    response = Client().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "scopes": ["speech"]}, "This field is required."),
        ({"name": "   ", "scopes": ["speech"]}, "This field is required."),
        ({"name": "ci"}, "Choose at least one scope."),
        ({"name": "ci", "scopes": ["root"]}, "Select a valid choice. root is not one of the available choices."),
    ],
)
def test_key_create_explains_invalid_input(owner, owner_client, data, message):
    response = owner_client.post("/app/keys/", data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiKey.objects.for_tenant(owner.tenant).exists()


def test_key_create_refuses_a_duplicate_name(owner, owner_client):
    ApiKeyFactory.create(tenant=owner.tenant, name="ci")

    response = owner_client.post("/app/keys/", {"name": "ci", "scopes": ["speech"]})

    assert "An API key with this name already exists." in response.content.decode()
    assert ApiKey.objects.for_tenant(owner.tenant).count() == 1


def test_key_list_shows_last_use(owner, owner_client):
    busy = ApiKeyFactory.create_with_plaintext(tenant=owner.tenant, name="busy")
    Client().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {busy.plaintext}")
    ApiKeyFactory.create(tenant=owner.tenant, name="idle")

    page = owner_client.get("/app/keys/").content.decode()

    busy_row = page.split(f'data-key-id="{busy.api_key.pk}"')[1].split("</tr>")[0]
    assert "ago</time>" in busy_row
    assert "Never" in page  # the idle one


def test_key_revoke_refuses_the_key_from_then_on(owner, owner_client):
    created = ApiKeyFactory.create_with_plaintext(tenant=owner.tenant, name="old")

    response = owner_client.post(f"/app/keys/{created.api_key.pk}/revoke", follow=True)

    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is not None
    assert "is revoked" in response.content.decode()
    assert Client().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {created.plaintext}").status_code == 401
    assert AuditEvent.objects.for_tenant(owner.tenant).filter(action="api_key.revoked", actor_user=owner.user).exists()


def test_key_revoke_needs_post(owner, owner_client):
    api_key = ApiKeyFactory.create(tenant=owner.tenant)

    response = owner_client.get(f"/app/keys/{api_key.pk}/revoke")

    api_key.refresh_from_db()
    assert response.status_code == 405
    assert api_key.revoked_at is None


def test_key_revoke_of_another_tenants_key_is_not_found(owner_client):
    theirs = ApiKeyFactory.create(tenant=TenantFactory())

    response = owner_client.post(f"/app/keys/{theirs.pk}/revoke")

    theirs.refresh_from_db()
    assert response.status_code == 404
    assert theirs.revoked_at is None


def test_key_list_shows_only_the_tenants_own_keys(owner, owner_client):
    mine = ApiKeyFactory.create(tenant=owner.tenant, name="mine")
    theirs = ApiKeyFactory.create(tenant=TenantFactory(), name="theirs")

    page = owner_client.get("/app/keys/").content.decode()

    assert mine.prefix in page
    assert theirs.prefix not in page


# --- Members ----------------------------------------------------------------------------


# Inviting and accepting: tests/tenants/test_invitations.py.


def test_member_add_refuses_someone_already_in(owner, owner_client):
    response = owner_client.post("/app/settings/members", {"email": owner.user.email, "role": "member"})

    assert f"{owner.user.email} is already a member" in response.content.decode()
    assert Membership.objects.for_tenant(owner.tenant).count() == 1


def test_member_add_explains_a_bad_email(owner, owner_client):
    response = owner_client.post("/app/settings/members", {"email": "not-an-email", "role": "member"})

    assert "Enter a valid email address." in response.content.decode()
    assert Membership.objects.for_tenant(owner.tenant).count() == 1


def test_admin_cannot_make_an_owner():
    admin = MembershipFactory(role=Membership.Role.ADMIN)

    response = signed_in_client(admin).post("/app/settings/members", {"email": "boss@example.test", "role": "owner"})

    assert "Select a valid choice." in response.content.decode()
    assert not User.objects.filter(email="boss@example.test").exists()


def test_member_remove_takes_access_away(owner, owner_client):
    other = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)

    response = owner_client.post(f"/app/settings/members/{other.pk}/remove", follow=True)

    assert not Membership.objects.for_tenant(owner.tenant).filter(pk=other.pk).exists()
    assert "was removed" in response.content.decode()
    assert signed_in_client(other).get("/app/speak/").status_code == 403


def test_member_remove_refuses_yourself(owner, owner_client):
    response = owner_client.post(f"/app/settings/members/{owner.pk}/remove", follow=True)

    assert Membership.objects.for_tenant(owner.tenant).filter(pk=owner.pk).exists()
    assert "You cannot remove yourself." in response.content.decode()


def test_admin_cannot_remove_an_owner(owner):
    admin = MembershipFactory(tenant=owner.tenant, role=Membership.Role.ADMIN)

    response = signed_in_client(admin).post(f"/app/settings/members/{owner.pk}/remove", follow=True)

    assert Membership.objects.for_tenant(owner.tenant).filter(pk=owner.pk).exists()
    assert "Only an owner can remove an owner." in response.content.decode()


def test_member_remove_of_another_tenants_membership_is_not_found(owner_client):
    theirs = MembershipFactory(role=Membership.Role.MEMBER)

    response = owner_client.post(f"/app/settings/members/{theirs.pk}/remove")

    assert response.status_code == 404
    assert Membership.objects.for_tenant(theirs.tenant).filter(pk=theirs.pk).exists()


def test_membership_delete_keeps_the_last_owner(owner):
    with pytest.raises(InvalidState, match="at least one owner"):
        membership_delete(tenant=owner.tenant, actor=None, membership=owner)

    assert Membership.objects.for_tenant(owner.tenant).filter(pk=owner.pk).exists()


def test_membership_delete_is_audited(owner):
    other = MembershipFactory(tenant=owner.tenant, role=Membership.Role.OWNER)

    membership_delete(tenant=owner.tenant, actor=None, membership=other)

    event = AuditEvent.objects.for_tenant(owner.tenant).get(action="membership.deleted")
    assert event.extra == {"user": other.user.username, "role": "owner"}


def test_settings_lists_only_the_tenants_members(owner, owner_client):
    colleague = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)
    stranger = MembershipFactory()

    page = owner_client.get("/app/settings/").content.decode()

    assert colleague.user.email in page
    assert stranger.user.email not in page


# --- Webhook and plan ---------------------------------------------------------------------


def test_webhook_url_is_saved(owner, owner_client, settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = True  # The receiver would be a local server.
    settings.PARLA_WEBHOOK_ALLOWED_PORTS = [9000]

    owner_client.post("/app/settings/webhook", {"url": "http://127.0.0.1:9000/parla"})

    owner.tenant.refresh_from_db()
    assert owner.tenant.webhook_url == "http://127.0.0.1:9000/parla"


def test_webhook_url_to_a_private_address_is_explained(owner, owner_client):
    response = owner_client.post("/app/settings/webhook", {"url": "http://127.0.0.1/parla"})

    owner.tenant.refresh_from_db()
    assert "resolves to a private, loopback or otherwise non-public address" in response.content.decode()
    assert owner.tenant.webhook_url == ""


def test_webhook_url_must_be_a_url(owner_client):
    response = owner_client.post("/app/settings/webhook", {"url": "not a url"})

    assert "Enter a valid URL." in response.content.decode()


def test_webhook_secret_rotation_replaces_the_secret(owner, owner_client):
    before = owner.tenant.webhook_secret

    response = owner_client.post("/app/settings/webhook/rotate-secret", follow=True)

    owner.tenant.refresh_from_db()
    assert owner.tenant.webhook_secret != before
    assert owner.tenant.webhook_secret in response.content.decode()


def test_settings_shows_the_plans_limits_read_only(owner, owner_client):
    page = owner_client.get("/app/settings/").content.decode()

    assert owner.tenant.plan.name in page
    assert f"{owner.tenant.plan.monthly_characters:,}" in page
    assert "Largest recording upload" in page
    assert 'name="monthly_characters"' not in page


# --- Workspace switcher -------------------------------------------------------------------


def test_switcher_is_shown_to_members_of_several_workspaces(owner, owner_client):
    single = owner_client.get("/app/speak/").content.decode()
    MembershipFactory(user=owner.user, tenant__name="Second Co")

    several = owner_client.get("/app/speak/").content.decode()

    assert 'id="tenant-switch"' not in single
    assert 'id="tenant-switch"' in several and "Second Co" in several


def test_switcher_changes_the_active_workspace(owner, owner_client):
    second = MembershipFactory(user=owner.user, role=Membership.Role.MEMBER)

    response = owner_client.post("/app/switch-tenant", {"tenant": second.tenant_id, "next": "/app/speak/"})

    assert response.status_code == 302 and response["Location"] == "/app/speak/"
    assert owner_client.session[SESSION_TENANT_KEY] == second.tenant_id
    assert owner_client.get("/app/keys/").status_code == 403  # a member over there


def test_switcher_refuses_a_workspace_the_user_is_not_in(owner, owner_client):
    stranger = TenantFactory()

    response = owner_client.post("/app/switch-tenant", {"tenant": stranger.pk})

    assert response.status_code == 404
    assert owner_client.session.get(SESSION_TENANT_KEY) != stranger.pk


def test_switcher_ignores_an_offsite_next_url(owner, owner_client):
    second = MembershipFactory(user=owner.user)

    response = owner_client.post("/app/switch-tenant", {"tenant": second.tenant_id, "next": "https://evil.test/"})

    assert response["Location"] == "/app/"


def test_member_of_a_suspended_workspace_can_switch_to_another():
    stuck = MembershipFactory(tenant__status=Tenant.Status.SUSPENDED)
    other = MembershipFactory(user=stuck.user, tenant__name="Still Active Co")
    client = signed_in_client(stuck)
    session = client.session
    session[SESSION_TENANT_KEY] = stuck.tenant_id
    session.save()

    page = client.get("/app/speak/").content.decode()
    client.post("/app/switch-tenant", {"tenant": other.tenant_id})

    assert "Still Active Co" in page
    assert client.get("/app/speak/").status_code == 200


def test_member_role_change_promotes_a_member_to_admin(owner, owner_client):
    other = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)

    response = owner_client.post(f"/app/settings/members/{other.pk}/role", {"role": "admin"}, follow=True)

    other.refresh_from_db()
    assert other.role == Membership.Role.ADMIN
    assert "is now admin" in response.content.decode()
    assert signed_in_client(other).get("/app/keys/").status_code == 200
    event = AuditEvent.objects.for_tenant(owner.tenant).get(action="membership.role_changed")
    assert event.extra["from"] == "member" and event.extra["to"] == "admin"


def test_member_role_change_is_forbidden_to_members(owner):
    member = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)
    other = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)

    response = signed_in_client(member).post(f"/app/settings/members/{other.pk}/role", {"role": "admin"})

    other.refresh_from_db()
    assert response.status_code == 403
    assert other.role == Membership.Role.MEMBER


@pytest.mark.parametrize("target_role, new_role", [("member", "owner"), ("owner", "member")])
def test_admin_cannot_make_or_unmake_an_owner(owner, target_role, new_role):
    admin = MembershipFactory(tenant=owner.tenant, role=Membership.Role.ADMIN)
    target = owner if target_role == "owner" else MembershipFactory(tenant=owner.tenant, role=target_role)

    response = signed_in_client(admin).post(f"/app/settings/members/{target.pk}/role", {"role": new_role}, follow=True)

    target.refresh_from_db()
    assert target.role == target_role
    assert "Only an owner can make someone owner" in response.content.decode()


def test_member_role_change_refuses_your_own_role_and_unknown_roles(owner, owner_client):
    other = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)

    own = owner_client.post(f"/app/settings/members/{owner.pk}/role", {"role": "member"}, follow=True)
    unknown = owner_client.post(f"/app/settings/members/{other.pk}/role", {"role": "emperor"}, follow=True)

    owner.refresh_from_db()
    other.refresh_from_db()
    assert (owner.role, other.role) == ("owner", "member")
    assert "You cannot change your own role." in own.content.decode()
    assert "Choose a role" in unknown.content.decode()


def test_membership_role_change_keeps_the_last_owner(owner):
    second = MembershipFactory(tenant=owner.tenant, role=Membership.Role.OWNER)
    membership_role_change(tenant=owner.tenant, actor=None, membership=second, role=Membership.Role.ADMIN)

    with pytest.raises(InvalidState, match="at least one owner"):
        membership_role_change(tenant=owner.tenant, actor=None, membership=owner, role=Membership.Role.MEMBER)

    owner.refresh_from_db()
    assert owner.role == Membership.Role.OWNER


def test_member_role_change_of_another_tenants_membership_is_not_found(owner_client):
    theirs = MembershipFactory(role=Membership.Role.MEMBER)

    response = owner_client.post(f"/app/settings/members/{theirs.pk}/role", {"role": "admin"})

    theirs.refresh_from_db()
    assert response.status_code == 404
    assert theirs.role == Membership.Role.MEMBER


def test_settings_offers_a_role_picker_for_other_members_only(owner, owner_client):
    other = MembershipFactory(tenant=owner.tenant, role=Membership.Role.MEMBER)

    page = owner_client.get("/app/settings/").content.decode()

    assert f'action="/app/settings/members/{other.pk}/role"' in page
    assert f'action="/app/settings/members/{owner.pk}/role"' not in page
