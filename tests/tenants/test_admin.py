import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, AuditEvent, Tenant
from tenants.quotas import quota_reserve
from tests.tenants.factories import ApiKeyFactory, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/tenants/tenant/",
        "/admin/tenants/tenant/add/",
        "/admin/tenants/plan/",
        "/admin/tenants/apikey/",
        "/admin/tenants/apikey/add/",
        "/admin/tenants/auditevent/",
        "/admin/tenants/user/",
        "/admin/synthesis/cachedaudio/",
        "/admin/synthesis/synthesisjob/",
        "/admin/batches/batch/",
        "/admin/batches/webhookdelivery/",
        "/admin/analytics/usagerecord/",
    ],
)
def test_admin_pages_load_for_an_operator(admin_client, url):
    from tests.batches.factories import BatchFactory
    from tests.synthesis.factories import SynthesisJobFactory

    TenantFactory()
    job = SynthesisJobFactory()
    BatchFactory(tenant=job.tenant)

    response = admin_client.get(url)

    assert response.status_code == 200


def test_admin_tenant_page_shows_usage_members_and_keys(admin_client):
    tenant = TenantFactory(plan__monthly_characters=10_000)
    MembershipFactory(tenant=tenant, user__username="owner@acme.test")
    api_key = ApiKeyFactory.create(tenant=tenant, name="production")
    quota_reserve(tenant=tenant, characters=1_234)

    page = admin_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()

    assert "1,234 held of 10,000 characters" in page
    assert "owner@acme.test" in page
    assert api_key.prefix in page
    assert api_key.secret_hash not in page


def test_admin_api_key_pages_never_show_the_secret_hash(admin_client):
    api_key = ApiKeyFactory.create(tenant=TenantFactory())

    pages = [admin_client.get("/admin/tenants/apikey/").content.decode(),
             admin_client.get(f"/admin/tenants/apikey/{api_key.pk}/change/").content.decode()]

    assert all(api_key.secret_hash not in page for page in pages)
    assert all(api_key.prefix in page for page in pages)


def test_admin_api_key_add_shows_the_new_key_once(admin_client):
    tenant = TenantFactory()

    response = admin_client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant.pk, "name": "from-admin", "scopes": ["speech", "usage"]},
        follow=True,
    )

    api_key = ApiKey.objects.for_tenant(tenant).get(name="from-admin")
    shown = next(str(m) for m in response.context["messages"] if api_key.prefix in str(m))
    plaintext = shown.split(": ", 1)[1].split(" ")[0]
    assert APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=plaintext).status_code == 200
    assert sorted(api_key.scopes) == ["speech", "usage"]


def test_admin_revoke_action_refuses_the_key_at_once(admin_client):
    tenant = TenantFactory()
    created = ApiKeyFactory.create_with_plaintext(tenant=tenant)

    admin_client.post(
        "/admin/tenants/apikey/",
        {"action": "revoke", "_selected_action": [created.api_key.pk]},
    )

    response = APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=created.plaintext)
    assert response.json()["code"] == "api_key_revoked"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="api_key.revoked").count() == 1


def test_admin_suspend_action_blocks_the_tenants_keys(admin_client):
    tenant = TenantFactory()
    created = ApiKeyFactory.create_with_plaintext(tenant=tenant)

    admin_client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant.pk]})

    response = APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=created.plaintext)
    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="tenant.status_changed").exists()


def test_admin_plan_change_is_audited(admin_client):
    tenant = TenantFactory(plan__slug="small")
    bigger = TenantFactory(plan__slug="big").plan

    admin_client.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            "name": tenant.name, "slug": tenant.slug, "plan": bigger.pk, "status": "active",
            "time_zone": "UTC",
            "membership-TOTAL_FORMS": 0, "membership-INITIAL_FORMS": 0,
            "apikey-TOTAL_FORMS": 0, "apikey-INITIAL_FORMS": 0,
        },
    )

    tenant.refresh_from_db()
    event = AuditEvent.objects.for_tenant(tenant).get(action="tenant.plan_changed")
    assert tenant.plan == bigger
    assert event.extra == {"from": "Small", "to": "Big"}


def test_admin_tenant_add_creates_secret_and_audit(admin_client):
    plan = TenantFactory().plan

    admin_client.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Added", "slug": "added", "plan": plan.pk, "status": "active", "time_zone": "Europe/Rome",
            "membership-TOTAL_FORMS": 0, "membership-INITIAL_FORMS": 0,
            "apikey-TOTAL_FORMS": 0, "apikey-INITIAL_FORMS": 0,
        },
    )

    tenant = Tenant.objects.get(slug="added")
    assert len(tenant.webhook_secret) >= 32
    assert AuditEvent.objects.for_tenant(tenant).filter(action="tenant.created").exists()


def test_admin_audit_events_are_read_only(admin_client):
    tenant = TenantFactory()
    ApiKeyFactory.create(tenant=tenant)
    event = AuditEvent.objects.for_tenant(tenant).first()

    change = admin_client.post(f"/admin/tenants/auditevent/{event.pk}/change/", {"action": "forged"})
    delete = admin_client.post(f"/admin/tenants/auditevent/{event.pk}/delete/", {"post": "yes"})

    event.refresh_from_db()
    assert event.action == "api_key.created"
    assert change.status_code in (302, 403) and delete.status_code == 403
    assert admin_client.get("/admin/tenants/auditevent/?action=api_key.created").status_code == 200


def test_admin_member_added_inline_is_audited(admin_client):
    tenant = TenantFactory()
    user = MembershipFactory().user

    admin_client.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            "name": tenant.name, "slug": tenant.slug, "plan": tenant.plan.pk, "status": "active",
            "time_zone": "UTC",
            "membership-TOTAL_FORMS": 1, "membership-INITIAL_FORMS": 0,
            "membership-0-user": user.pk, "membership-0-role": "admin",
            "apikey-TOTAL_FORMS": 0, "apikey-INITIAL_FORMS": 0,
        },
    )

    event = AuditEvent.objects.for_tenant(tenant).get(action="membership.created")
    assert event.extra == {"user": user.username, "role": "admin"}


def test_admin_login_is_rate_limited_per_address(client):
    statuses = [
        client.post("/admin/login/", {"username": "nobody", "password": "wrong"}).status_code
        for _ in range(12)
    ]

    assert statuses[:10] == [200] * 10  # The form again, with an error.
    assert statuses[10:] == [403, 403]


def test_admin_batch_page_shows_its_webhook_log(admin_client):
    from batches.models import WebhookDelivery
    from tests.batches.factories import BatchFactory

    batch = BatchFactory()
    WebhookDelivery.objects.create(tenant=batch.tenant, batch=batch, event="batch.completed",
                                   url="https://hooks.example.test/parla", payload={}, status="failed",
                                   attempts=8, last_status_code=500)

    page = admin_client.get(f"/admin/batches/batch/{batch.pk}/change/").content.decode()

    assert "https://hooks.example.test/parla" in page
    assert "batch.completed" in page


def _tenant_form(tenant, memberships: list[dict], initial: int) -> dict:
    data = {
        "name": tenant.name, "slug": tenant.slug, "plan": tenant.plan.pk, "status": "active", "time_zone": "UTC",
        "membership-TOTAL_FORMS": len(memberships), "membership-INITIAL_FORMS": initial,
        "apikey-TOTAL_FORMS": 0, "apikey-INITIAL_FORMS": 0,
    }
    for index, fields in enumerate(memberships):
        data.update({f"membership-{index}-{name}": value for name, value in fields.items()})
    return data


def test_admin_cannot_demote_or_remove_the_last_owner(admin_client):
    owner = MembershipFactory(role="owner")
    tenant = owner.tenant
    row = {"id": owner.pk, "tenant": tenant.pk, "user": owner.user_id}

    demoted = admin_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/",
                                _tenant_form(tenant, [{**row, "role": "member"}], initial=1))
    removed = admin_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/",
                                _tenant_form(tenant, [{**row, "role": "owner", "DELETE": "on"}], initial=1))

    for response in (demoted, removed):
        assert response.status_code == 200  # the form again, with the error
        assert "A tenant needs at least one owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_admin_hands_a_tenant_to_another_owner_in_one_save_through_the_services(admin_client):
    owner = MembershipFactory(role="owner")
    tenant = owner.tenant
    other = MembershipFactory(tenant=tenant, role="member")

    response = admin_client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", _tenant_form(tenant, [
        {"id": owner.pk, "tenant": tenant.pk, "user": owner.user_id, "role": "member"},
        {"id": other.pk, "tenant": tenant.pk, "user": other.user_id, "role": "owner"},
    ], initial=2))

    assert response.status_code == 302
    owner.refresh_from_db(), other.refresh_from_db()
    assert (owner.role, other.role) == ("member", "owner")
    changes = AuditEvent.objects.for_tenant(tenant).filter(action="membership.role_changed")
    assert sorted((event.extra["from"], event.extra["to"]) for event in changes) == [
        ("member", "owner"), ("owner", "member"),
    ]
