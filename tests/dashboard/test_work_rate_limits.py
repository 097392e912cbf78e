"""Dashboard pages that make work count against the plan's requests per minute, in the same
window as the API: over the limit they answer 429 with a clear message and make nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from batches.models import Batch
from synthesis.models import SynthesisJob
from tenants.models import Membership
from tests.batches.conftest import dispatched  # noqa: F401  (records dispatches instead of using a broker)
from tests.helpers import signed_in_client
from tests.synthesis.conftest import captured_jobs  # noqa: F401  (records enqueued jobs instead of a broker)
from tests.tenants.factories import ApiKeyFactory, MembershipFactory
from tests.voices.conftest import speech_wav  # noqa: F401  (a real recording of speech, made by Piper)
from voices.models import VoiceProfile, VoiceReference

pytestmark = pytest.mark.django_db

SPEAK = {"input_mode": "text", "text": "Hello there.", "voice": "piper:en_US-joe-medium", "format": "mp3",
         "sample_rate": "", "speed": "1", "pitch": "0", "loudness": ""}
BATCH = {"name": "Lesson 1", "source": "lines", "lines": "The first line.\nThe second line.\n",
         "voice": "piper:en_US-joe-medium", "format": "mp3"}


@pytest.fixture
def member():
    return MembershipFactory(role=Membership.Role.MEMBER, tenant__plan__requests_per_minute=1)


def _use_the_minute_through_the_api(tenant) -> None:
    key = ApiKeyFactory.create_with_plaintext(tenant=tenant).plaintext
    assert APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=key).status_code == 200


def _assert_rate_limited_page(response) -> None:
    page = response.content.decode()
    assert response.status_code == 429
    assert "Too many requests" in page and "allows 1 a minute" in page and "Nothing was made" in page
    assert int(response["Retry-After"]) >= 1


def test_speak_page_counts_its_posts_against_the_plan(member, captured_jobs):
    client = signed_in_client(member)

    first = client.post("/app/speak/", SPEAK)
    second = client.post("/app/speak/", SPEAK)

    assert first.status_code == 302
    _assert_rate_limited_page(second)
    assert SynthesisJob.objects.for_tenant(member.tenant).count() == 1
    assert len(captured_jobs()) == 1


def test_speak_page_over_the_limit_queues_nothing(member, captured_jobs):
    _use_the_minute_through_the_api(member.tenant)

    response = signed_in_client(member).post("/app/speak/", SPEAK)

    _assert_rate_limited_page(response)
    assert not SynthesisJob.objects.for_tenant(member.tenant).exists()
    assert captured_jobs() == []


def test_speak_page_still_opens_over_the_limit(member):
    _use_the_minute_through_the_api(member.tenant)

    response = signed_in_client(member).get("/app/speak/")

    assert response.status_code == 200


def test_voice_create_over_the_limit_makes_no_voice(member, speech_wav):
    _use_the_minute_through_the_api(member.tenant)

    response = signed_in_client(member).post("/app/voices/new", {
        "name": "Course narrator", "language": "en-US", "description": "",
        "references": [SimpleUploadedFile("narrator.wav", speech_wav, content_type="audio/wav")],
    })

    _assert_rate_limited_page(response)
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()
    assert not VoiceReference.objects.for_tenant(member.tenant).exists()


def test_reference_check_over_the_limit_answers_in_the_error_shape(member, speech_wav):
    _use_the_minute_through_the_api(member.tenant)

    response = signed_in_client(member).post(
        "/app/voices/recordings/check",
        {"file": SimpleUploadedFile("narrator.wav", speech_wav, content_type="audio/wav")},
    )

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert response.json()["extra"] == {"limit": 1, "window_seconds": 60}
    assert int(response["Retry-After"]) >= 1


def test_batch_create_over_the_limit_makes_no_batch(member, dispatched):
    _use_the_minute_through_the_api(member.tenant)

    response = signed_in_client(member).post("/app/batches/new", BATCH)

    _assert_rate_limited_page(response)
    assert not Batch.objects.for_tenant(member.tenant).exists()
    assert not SynthesisJob.objects.for_tenant(member.tenant).exists()
    assert dispatched == []


def test_page_posts_over_the_limit_leave_the_api_limited_too(member, captured_jobs):
    client = signed_in_client(member)
    client.post("/app/speak/", SPEAK)
    key = ApiKeyFactory.create_with_plaintext(tenant=member.tenant).plaintext

    response = APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=key)

    assert response.status_code == 429
