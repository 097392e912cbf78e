from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.tenants.factories import ApiKeyFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_rate_limit_parallel_requests_over_http_admit_at_most_the_plan(live_server):
    tenant = TenantFactory(plan__requests_per_minute=10)
    key = ApiKeyFactory.create_with_plaintext(tenant=tenant).plaintext

    def call(_):
        with requests.Session() as session:
            return session.get(f"{live_server.url}/api/v1/tenant", headers={"X-API-Key": key}, timeout=30)

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(call, range(50)))

    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) == 10
    assert len(limited) == 40
    assert all(r.json()["code"] == "rate_limited" for r in limited)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert all(r.headers["X-RateLimit-Limit"] == "10" for r in responses)
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in ok) == list(range(10))


def test_rate_limit_is_shared_by_all_keys_of_a_tenant(api_client_for):
    tenant = TenantFactory(plan__requests_per_minute=3)
    first, second = api_client_for(tenant), api_client_for(tenant)

    statuses = [c.get("/api/v1/tenant").status_code for c in (first, second, first, second)]

    assert statuses == [200, 200, 200, 429]


def test_rate_limit_of_one_tenant_does_not_touch_another(api_client_for):
    busy, quiet = TenantFactory(plan__requests_per_minute=1), TenantFactory(plan__requests_per_minute=1)
    busy_client = api_client_for(busy)
    busy_client.get("/api/v1/tenant")

    assert busy_client.get("/api/v1/tenant").status_code == 429
    assert api_client_for(quiet).get("/api/v1/tenant").status_code == 200


def test_rate_limit_headers_on_every_response(api_client_for, tenant):
    response = api_client_for(tenant).get("/api/v1/tenant")

    assert response["X-RateLimit-Limit"] == str(tenant.plan.requests_per_minute)
    assert int(response["X-RateLimit-Remaining"]) == tenant.plan.requests_per_minute - 1
    assert 1 <= int(response["X-RateLimit-Reset"]) <= 60


@pytest.mark.urls("tests.tenants.urls_limits")
def test_quota_and_throttle_rejections_have_different_codes(api_client_for):
    tenant = TenantFactory(plan__monthly_characters=100, plan__requests_per_minute=2)
    client = api_client_for(tenant)

    over_quota = client.post("/api/v1/test-reserve", {"characters": 101}, format="json")
    client.post("/api/v1/test-reserve", {"characters": 1}, format="json")
    throttled = client.post("/api/v1/test-reserve", {"characters": 1}, format="json")

    assert (over_quota.status_code, over_quota.json()["code"]) == (429, "quota_exceeded")
    assert (throttled.status_code, throttled.json()["code"]) == (429, "rate_limited")
    assert over_quota["Retry-After"] and throttled["Retry-After"]
    assert over_quota.json()["extra"]["limit"] == 100


@pytest.mark.urls("tests.tenants.urls_limits")
def test_concurrent_jobs_limit_answers_429_with_its_own_code(api_client_for):
    tenant = TenantFactory(plan__concurrent_jobs=1)
    client = api_client_for(tenant)

    first = client.post("/api/v1/test-reserve", {"characters": 1, "job": True}, format="json")
    second = client.post("/api/v1/test-reserve", {"characters": 1, "job": True}, format="json")

    assert first.status_code == 202
    assert (second.status_code, second.json()["code"]) == (429, "concurrency_limit_exceeded")
    assert second["Retry-After"]
