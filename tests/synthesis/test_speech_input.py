"""Bad input to the speech endpoints: a 4xx with its own code, nothing queued or charged."""

import pytest

from synthesis.models import SynthesisJob
from tenants.models import QuotaReservation
from tests.tenants.factories import TenantFactory
from tests.voices.factories import VoiceProfileFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/v1/speech", "/api/v1/speech/stream", "/api/v1/jobs"]


def _nothing_happened(tenant) -> bool:
    return (not SynthesisJob.objects.for_tenant(tenant).exists()
            and not QuotaReservation.objects.for_tenant(tenant).exists())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": ""}, 400, "invalid_text"),
        ({"text": "   \n "}, 400, "invalid_text"),
        ({"text": "?!…"}, 400, "invalid_text"),
        ({"ssml": "<speak>unclosed"}, 400, "invalid_ssml"),
        ({"ssml": "<speak><audio src='x'/></speak>"}, 400, "invalid_ssml"),
        ({"text": "Hi", "voice": "piper:nobody"}, 400, "unknown_voice"),
        ({"text": "Hi", "voice": "nobody-at-all"}, 400, "unknown_voice"),
        ({"text": "Hi", "voice": "999999"}, 400, "unknown_voice"),
        ({"text": "Hi", "voice": "xtts:someone"}, 409, "engine_unavailable"),
        ({"text": "Hi", "format": "aiff"}, 400, "validation_error"),
        ({"text": "Hi", "speed": 3}, 400, "validation_error"),
        ({"text": "Hi", "speed": "fast"}, 400, "validation_error"),
        ({"text": "Hi", "pitch": -40}, 400, "validation_error"),
        ({"text": "Hi", "sample_rate": 12345}, 400, "validation_error"),
        ({"text": "Hi", "volume": 99}, 400, "validation_error"),
        ({"text": "Hi", "loudness": 0}, 400, "validation_error"),
        ({"text": "Hi", "ssml": "<speak>Hi</speak>"}, 400, "validation_error"),
        ({}, 400, "validation_error"),
        ({"text": "Hi", "colour": "blue"}, 400, "validation_error"),
        ({"text": 42}, 400, "validation_error"),
        ({"text": "Hi", "bitrate": 96}, 400, "validation_error"),  # wav has no bitrate
    ],
)
def test_speech_bad_input_is_refused_before_anything_is_queued(api_client_for, endpoint, body, status, code):
    tenant = TenantFactory()

    response = api_client_for(tenant).post(endpoint, body, format="json")

    assert response.status_code == status, response.json()
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert _nothing_happened(tenant)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_speech_malformed_json_is_a_parse_error(api_client_for, endpoint):
    tenant = TenantFactory()

    response = api_client_for(tenant).post(endpoint, b'{"text": "Hi",', content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert _nothing_happened(tenant)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_speech_wrong_content_type_is_415(api_client_for, endpoint):
    tenant = TenantFactory()

    response = api_client_for(tenant).post(endpoint, "text=Hi", content_type="application/x-www-form-urlencoded")

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    assert _nothing_happened(tenant)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_speech_body_that_is_not_an_object_is_refused(api_client_for, endpoint):
    tenant = TenantFactory()

    response = api_client_for(tenant).post(endpoint, ["Hi"], format="json")

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert _nothing_happened(tenant)


def test_speech_text_over_the_plan_limit_is_refused(api_client_for):
    tenant = TenantFactory(plan__request_characters=100)

    response = api_client_for(tenant).post("/api/v1/speech", {"text": "word " * 30}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "text_too_long")
    assert response.json()["extra"] == {"limit": 100, "length": 150}
    assert _nothing_happened(tenant)


def test_speech_beyond_monthly_quota_is_refused_with_retry_after(api_client_for):
    tenant = TenantFactory(plan__monthly_characters=10)

    response = api_client_for(tenant).post("/api/v1/jobs", {"text": "Eleven char"}, format="json")

    assert (response.status_code, response.json()["code"]) == (429, "quota_exceeded")
    assert int(response["Retry-After"]) > 0
    assert _nothing_happened(tenant)


def test_speech_with_another_tenants_voice_is_unknown_voice(api_client_for):
    mine, theirs = TenantFactory(), TenantFactory()
    voice = VoiceProfileFactory(tenant=theirs, status="ready")

    response = api_client_for(mine).post("/api/v1/speech", {"text": "Hi", "voice": str(voice.pk)}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "unknown_voice")
    assert _nothing_happened(mine) and _nothing_happened(theirs)


def test_speech_with_a_voice_still_enrolling_is_409(api_client_for):
    tenant = TenantFactory()
    voice = VoiceProfileFactory(tenant=tenant, status="enrolling")

    response = api_client_for(tenant).post("/api/v1/speech", {"text": "Hi", "voice": str(voice.pk)}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "voice_not_ready")
    assert _nothing_happened(tenant)


def test_stream_refuses_formats_that_cannot_stream(api_client_for):
    tenant = TenantFactory()

    response = api_client_for(tenant).post("/api/v1/speech/stream", {"text": "Hi", "format": "flac"}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert _nothing_happened(tenant)


def test_speech_needs_the_speech_scope(api_client_for):
    tenant = TenantFactory()

    response = api_client_for(tenant, scopes=["voices"]).post("/api/v1/speech", {"text": "Hi"}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")
    assert _nothing_happened(tenant)
