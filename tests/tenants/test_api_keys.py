import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenants.keys import hash_secret
from tenants.models import ApiKey, AuditEvent, Plan, Tenant
from tenants.selectors import api_key_by_prefix
from tests.tenants.factories import ApiKeyFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_api_key_create_stores_only_a_hash(tenant):
    created = ApiKeyFactory.create_with_plaintext(tenant=tenant)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apikey")
        rows = cursor.fetchall()
    secret_part = created.plaintext.split("_", 2)[2]
    assert rows
    assert not any(created.plaintext in str(value) for row in rows for value in row)
    assert not any(secret_part in str(value) for row in rows for value in row)
    assert created.api_key.secret_hash == hash_secret(created.plaintext)
    assert created.plaintext.startswith(created.api_key.prefix + "_")


def test_keys_create_returns_secret_once(api_client_for, tenant):
    client = api_client_for(tenant)

    created = client.post("/api/v1/keys", {"name": "ci"}, format="json")
    listed = client.get("/api/v1/keys")

    assert created.status_code == 201
    assert created.json()["key"].startswith(created.json()["prefix"])
    assert all("key" not in row and "secret_hash" not in row for row in listed.json()["results"])
    assert {row["name"] for row in listed.json()["results"]} >= {"ci"}


def test_keys_create_key_works_immediately(api_client_for, tenant):
    created = api_client_for(tenant).post("/api/v1/keys", {"name": "fresh"}, format="json").json()

    response = APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=created["key"])

    assert response.status_code == 200
    assert response.json()["slug"] == tenant.slug


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_authentication_accepts_bearer_and_x_api_key(api_client_for, tenant, header):
    response = api_client_for(tenant, header=header).get("/api/v1/tenant")

    assert response.status_code == 200


def test_authentication_missing_key_is_401_with_www_authenticate():
    response = APIClient().get("/api/v1/tenant")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "presented",
    ["garbage", "prl_AAAAAAAA_not-a-real-secret", "Bearer", "prl_", "prl_short_x"],
)
def test_authentication_bad_key_is_401(presented):
    response = APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=presented)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"
    assert set(response.json()) == {"code", "message", "extra"}
    assert response["WWW-Authenticate"] == 'Bearer realm="parla"'


def test_authentication_right_prefix_wrong_secret_is_401(tenant):
    created = ApiKeyFactory.create_with_plaintext(tenant=tenant)
    forged = created.api_key.prefix + "_" + "x" * 43

    response = APIClient().get("/api/v1/tenant", HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_keys_delete_revokes_at_once(api_client_for, tenant):
    admin = api_client_for(tenant)
    victim = api_client_for(tenant)
    assert victim.get("/api/v1/tenant").status_code == 200

    response = admin.delete(f"/api/v1/keys/{victim.api_key.pk}")

    assert response.status_code == 204
    refused = victim.get("/api/v1/tenant")
    assert refused.status_code == 401
    assert refused.json()["code"] == "api_key_revoked"
    assert ApiKey.objects.get(pk=victim.api_key.pk).revoked_at is not None


def test_keys_delete_twice_is_idempotent(api_client_for, tenant):
    admin = api_client_for(tenant)
    victim = ApiKeyFactory.create(tenant=tenant)

    first = admin.delete(f"/api/v1/keys/{victim.pk}")
    second = admin.delete(f"/api/v1/keys/{victim.pk}")

    assert (first.status_code, second.status_code) == (204, 204)
    assert AuditEvent.objects.for_tenant(tenant).filter(action="api_key.revoked").count() == 1


def test_authentication_suspended_tenant_is_refused_with_its_code(api_client_for, tenant):
    client = api_client_for(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)

    response = client.get("/api/v1/tenant")

    assert response.status_code == 403
    assert response.json()["code"] == "tenant_suspended"


def test_keys_endpoints_need_keys_scope(api_client_for, tenant):
    client = api_client_for(tenant, scopes=["speech"])

    responses = [client.get("/api/v1/keys"), client.post("/api/v1/keys", {"name": "x"}, format="json")]

    assert [r.status_code for r in responses] == [403, 403]
    assert {r.json()["code"] for r in responses} == {"insufficient_scope"}


def test_keys_create_cannot_grant_scopes_the_caller_lacks(api_client_for, tenant):
    client = api_client_for(tenant, scopes=["keys", "usage"])

    escalated = client.post("/api/v1/keys", {"name": "x", "scopes": ["speech"]}, format="json")
    defaulted = client.post("/api/v1/keys", {"name": "y"}, format="json")

    assert escalated.status_code == 400
    assert escalated.json()["extra"]["fields"]["scopes"] == ["speech"]
    assert sorted(defaulted.json()["scopes"]) == ["keys", "usage"]


def test_keys_create_rejects_duplicate_name(api_client_for, tenant):
    client = api_client_for(tenant)
    client.post("/api/v1/keys", {"name": "dup"}, format="json")

    response = client.post("/api/v1/keys", {"name": "dup"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "name" in response.json()["extra"]["fields"]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x" * 101}, {"name": "ok", "scopes": ["root"]}, {"name": "ok", "scopes": []}],
)
def test_keys_create_validates_input(api_client_for, tenant, body):
    response = api_client_for(tenant).post("/api/v1/keys", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["extra"]["fields"]


def test_keys_create_and_revoke_are_audited(api_client_for, tenant):
    client = api_client_for(tenant)

    key_id = client.post("/api/v1/keys", {"name": "audited"}, format="json",
                         HTTP_USER_AGENT="curl/8").json()["id"]
    client.delete(f"/api/v1/keys/{key_id}")

    events = AuditEvent.objects.for_tenant(tenant).filter(object_id=str(key_id)).order_by("id")
    assert [e.action for e in events] == ["api_key.created", "api_key.revoked"]
    assert events[0].actor_api_key == client.api_key
    assert events[0].user_agent == "curl/8"
    assert events[0].ip_address == "127.0.0.1"


def test_authentication_records_last_used(api_client_for, tenant):
    client = api_client_for(tenant)
    assert client.api_key.last_used_at is None

    client.get("/api/v1/tenant")

    client.api_key.refresh_from_db()
    assert client.api_key.last_used_at is not None


def test_keys_list_is_cursor_paginated(api_client_for, tenant):
    client = api_client_for(tenant)
    for n in range(3):
        ApiKeyFactory.create(tenant=tenant, name=f"bulk-{n}")

    first = client.get("/api/v1/keys", {"page_size": 2}).json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 2
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})


def test_keys_delete_unknown_or_malformed_id_is_404(api_client_for, tenant):
    client = api_client_for(tenant)

    responses = [client.delete("/api/v1/keys/999999"), client.delete("/api/v1/keys/abc")]

    assert [r.status_code for r in responses] == [404, 404]
    assert {r.json()["code"] for r in responses} == {"not_found"}


def test_tenant_detail_shows_plan_limits_and_usage(api_client_for):
    tenant = TenantFactory(plan__monthly_characters=5_000)

    body = api_client_for(tenant).get("/api/v1/tenant").json()

    assert body["plan"]["monthly_characters"] == 5_000
    assert body["limits"]["requests_per_minute"] == tenant.plan.requests_per_minute
    assert body["usage"]["characters_remaining"] == 5_000
    assert body["usage"]["characters_used"] == 0


def test_api_key_by_prefix_is_the_orm_lookup_in_one_query(tenant):
    key = ApiKeyFactory.create(tenant=tenant, scopes=["speech", "usage"])
    expected = ApiKey.objects.select_related("tenant__plan").get(prefix=key.prefix)

    with CaptureQueriesContext(connection) as queries:
        found = api_key_by_prefix(prefix=key.prefix)
        plan_limit = found.tenant.plan.monthly_characters  # from the same row, no query

    assert len(queries) == 1
    for model, mine, theirs in ((ApiKey, found, expected), (Tenant, found.tenant, expected.tenant),
                                (Plan, found.tenant.plan, expected.tenant.plan)):
        fields = [field.attname for field in model._meta.concrete_fields]
        assert [getattr(mine, name) for name in fields] == [getattr(theirs, name) for name in fields]
        assert not mine._state.adding and mine._state.db == "default"
    assert found.scopes == ["speech", "usage"] and plan_limit == expected.tenant.plan.monthly_characters
    assert api_key_by_prefix(prefix=key.prefix[:-1] + "?") is None
