import pytest

from tenants.models import AuditEvent
from tests.tenants.factories import TenantFactory
from tests.voices.factories import VoiceProfileFactory
from voices.models import VoiceProfile

pytestmark = pytest.mark.django_db


def test_voices_list_has_catalog_and_own_voices_with_licences(api_client_for):
    tenant = TenantFactory()
    VoiceProfileFactory(tenant=tenant, name="Brand narrator")

    rows = api_client_for(tenant).get("/api/v1/voices").json()["results"]

    by_id = {row["id"]: row for row in rows}
    assert by_id["piper:en_US-joe-medium"]["kind"] == "catalog"
    assert by_id["piper:en_US-joe-medium"]["commercial_use"] is True
    own = [row for row in rows if row["own"]]
    assert [row["name"] for row in own] == ["Brand narrator"]
    assert all("licence" in row for row in rows)


def test_voices_list_filters_by_kind_engine_and_language(api_client_for):
    tenant = TenantFactory()
    VoiceProfileFactory(tenant=tenant, name="Mine")
    client = api_client_for(tenant)

    catalog = client.get("/api/v1/voices", {"kind": "catalog", "engine": "kokoro"}).json()["results"]
    german = client.get("/api/v1/voices", {"language": "de"}).json()["results"]
    cloned = client.get("/api/v1/voices", {"kind": "cloned"}).json()["results"]

    assert catalog and {row["engine"] for row in catalog} == {"kokoro"}
    assert german == []
    assert cloned == []


def test_voices_list_shows_only_the_callers_own_voices(api_client_for):
    mine, theirs = TenantFactory(), TenantFactory()
    VoiceProfileFactory(tenant=theirs, name="Their secret voice")

    rows = api_client_for(mine).get("/api/v1/voices").json()["results"]

    assert "Their secret voice" not in {row["name"] for row in rows}


def test_voice_create_preset_of_a_catalog_voice(api_client_for):
    tenant = TenantFactory()

    response = api_client_for(tenant).post(
        "/api/v1/voices", {"name": "Calm Joe", "base_voice_id": "piper:en_US-joe-medium", "tenant": 999}
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["status"], body["engine"]) == ("catalog", "ready", "piper")
    assert body["engine_label"] == "preset of piper:en_US-joe-medium"
    assert VoiceProfile.objects.for_tenant(tenant).get().name == "Calm Joe"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="voice.created").exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "X", "base_voice_id": "piper:nobody"}, "unknown_voice"),
        ({"name": "X", "base_voice_id": "xtts:someone"}, "engine_unavailable"),
        ({"name": "X"}, "validation_error"),
        ({"base_voice_id": "piper:en_US-joe-medium"}, "validation_error"),
        ({"name": "X", "engine": "bark", "references": []}, "validation_error"),
    ],
)
def test_voice_create_rejects_bad_input_without_storing(api_client_for, body, code):
    tenant = TenantFactory()

    response = api_client_for(tenant).post("/api/v1/voices", body)

    assert 400 <= response.status_code < 500
    assert response.json()["code"] == code
    assert not VoiceProfile.objects.for_tenant(tenant).exists()


def test_voice_create_refuses_beyond_the_plans_voices(api_client_for):
    tenant = TenantFactory(plan__voices=1)
    VoiceProfileFactory(tenant=tenant)

    response = api_client_for(tenant).post(
        "/api/v1/voices", {"name": "Second", "base_voice_id": "piper:en_US-joe-medium"}
    )

    assert (response.status_code, response.json()["code"]) == (403, "plan_limit_reached")
    assert response.json()["extra"]["limit_name"] == "voices"


def test_voice_patch_changes_labels_and_audits(api_client_for):
    tenant = TenantFactory()
    profile = VoiceProfileFactory(tenant=tenant)

    response = api_client_for(tenant).patch(f"/api/v1/voices/{profile.pk}", {"name": "Renamed", "gender": "male"},
                                            format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="voice.updated").exists()


@pytest.mark.parametrize("field", ["kind", "tenant", "engine", "status"])
def test_voice_patch_cannot_change_kind_tenant_or_engine(api_client_for, field):
    tenant = TenantFactory()
    profile = VoiceProfileFactory(tenant=tenant)

    response = api_client_for(tenant).patch(f"/api/v1/voices/{profile.pk}", {field: "cloned"}, format="json")

    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]
    profile.refresh_from_db()
    assert (profile.kind, profile.tenant_id, profile.engine) == ("catalog", tenant.pk, "piper")


def test_voice_delete_removes_it_and_audits(api_client_for):
    tenant = TenantFactory()
    profile = VoiceProfileFactory(tenant=tenant)

    response = api_client_for(tenant).delete(f"/api/v1/voices/{profile.pk}")

    assert response.status_code == 204
    assert not VoiceProfile.objects.for_tenant(tenant).exists()
    assert AuditEvent.objects.for_tenant(tenant).filter(action="voice.deleted").exists()


def test_voices_need_the_voices_scope(api_client_for):
    response = api_client_for(TenantFactory(), scopes=["speech"]).get("/api/v1/voices")

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
