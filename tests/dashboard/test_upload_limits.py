"""The dashboard's upload forms refuse what the plan does not allow before any file is decoded."""

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.helpers import signed_in_client
from tests.tenants.factories import MembershipFactory
from tests.voices.conftest import speech_wav  # noqa: F401  (a real recording of speech, made by Piper)
from tests.voices.factories import VoiceReferenceFactory
from voices.audio_checks import reference as reference_module
from voices.models import VoiceProfile, VoiceReference

pytestmark = pytest.mark.django_db


@pytest.fixture
def decoder_spy():
    """A spy on the decoder: it records calls and still decodes exactly as the product does."""
    with mock.patch.object(
        reference_module, "decode_reference", wraps=reference_module.decode_reference
    ) as spy:
        yield spy


def _wav(data: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="audio/wav")


def test_voice_create_page_refuses_more_recordings_than_the_plan_before_decoding(speech_wav, decoder_spy):
    member = MembershipFactory(tenant__plan__references_per_voice=5)

    response = signed_in_client(member).post("/app/voices/new", {
        "name": "Narrator", "language": "en-US",
        "references": [_wav(speech_wav, f"take{n}.wav") for n in range(6)],
    })

    assert response.status_code == 200
    assert f"The {member.tenant.plan.name} plan allows 5 recordings per voice." in response.content.decode()
    assert decoder_spy.call_count == 0
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()


def test_recordings_page_counts_existing_recordings_before_decoding(speech_wav, decoder_spy):
    member = MembershipFactory(tenant__plan__references_per_voice=2)
    existing = VoiceReferenceFactory(tenant=member.tenant, profile__tenant=member.tenant)

    response = signed_in_client(member).post(f"/app/voices/{existing.profile.pk}/recordings", {
        "references": [_wav(speech_wav, "a.wav"), _wav(speech_wav, "b.wav")],
    })

    assert f"The {member.tenant.plan.name} plan allows 2 recordings per voice." in response.content.decode()
    assert decoder_spy.call_count == 0
    assert VoiceReference.objects.for_tenant(member.tenant).count() == 1
