"""Reference uploads are counted and sized against the plan before any file is read or decoded."""

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.tenants.factories import TenantFactory
from tests.voices.factories import VoiceReferenceFactory
from voices.audio_checks import reference as reference_module
from voices.models import VoiceProfile, VoiceReference

pytestmark = pytest.mark.django_db


def _upload(data: bytes, name: str = "narrator.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="audio/wav")


@pytest.fixture
def decoder_spy():
    """A spy on the decoder: it records calls and still decodes exactly as the product does."""
    with mock.patch.object(
        reference_module, "decode_reference", wraps=reference_module.decode_reference
    ) as spy:
        yield spy


@pytest.fixture
def reader_spy():
    """A spy on the function that reads uploaded files' bytes; behaviour unchanged."""
    from voices import services

    with mock.patch.object(services, "uploads_read", wraps=services.uploads_read) as spy:
        yield spy


def test_voice_create_refuses_more_references_than_the_plan_before_decoding(
    api_client_for, speech_wav, decoder_spy, reader_spy
):
    tenant = TenantFactory(plan__references_per_voice=5)

    response = api_client_for(tenant).post(
        "/api/v1/voices",
        {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav) for _ in range(6)]},
        format="multipart",
    )

    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "plan_limit_reached"
    assert body["extra"] == {"limit": 5, "limit_name": "references_per_voice"}
    assert decoder_spy.call_count == 0
    assert reader_spy.call_count == 0
    assert not VoiceProfile.objects.for_tenant(tenant).exists()


def test_voice_create_with_references_up_to_the_limit_decodes_them(api_client_for, speech_wav, decoder_spy):
    tenant = TenantFactory(plan__references_per_voice=2)

    response = api_client_for(tenant).post(
        "/api/v1/voices",
        {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav) for _ in range(2)]},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert decoder_spy.call_count == 2
    assert VoiceReference.objects.for_tenant(tenant).count() == 2


def test_voice_reference_add_counts_existing_references_before_decoding(
    api_client_for, speech_wav, decoder_spy, reader_spy
):
    tenant = TenantFactory(plan__references_per_voice=5)
    existing = VoiceReferenceFactory(tenant=tenant, profile__tenant=tenant)
    for _ in range(2):
        VoiceReferenceFactory(tenant=tenant, profile=existing.profile)

    response = api_client_for(tenant).post(
        f"/api/v1/voices/{existing.profile.pk}/references",
        {"references": [_upload(speech_wav) for _ in range(3)]},
        format="multipart",
    )

    assert (response.status_code, response.json()["code"]) == (403, "plan_limit_reached")
    assert response.json()["extra"]["limit_name"] == "references_per_voice"
    assert decoder_spy.call_count == 0
    assert reader_spy.call_count == 0
    assert VoiceReference.objects.for_tenant(tenant).count() == 3


def test_voice_create_refuses_an_oversized_file_without_decoding(api_client_for, speech_wav, decoder_spy):
    tenant = TenantFactory(plan__upload_bytes=10_000)

    response = api_client_for(tenant).post(
        "/api/v1/voices", {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav)]},
        format="multipart",
    )

    assert (response.status_code, response.json()["code"]) == (413, "audio_too_large")
    assert response.json()["extra"]["file_index"] == 0
    assert decoder_spy.call_count == 0


def test_uploads_read_refuses_by_the_received_size_without_reading():
    from voices.errors import AudioTooLarge
    from voices.services import uploads_read

    class Received:
        """What Django hands a view: the size it counted while receiving, and a file to read."""

        name, size = "big.wav", 50_000

        def read(self, *args):
            raise AssertionError("an oversized file must not be read")

    with pytest.raises(AudioTooLarge) as refused:
        uploads_read([Received()], max_bytes=10_000)

    assert refused.value.extra == {"limit": 10_000, "file_index": 0, "filename": "big.wav"}
