"""Voices learnt from recordings: upload → validation → enrollment → synthesis with the voice."""

import numpy as np
import pytest
import soundfile as sf
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from synthesis.audio import AudioOptions
from synthesis.render import RenderRequest, render
from tests.tenants.factories import TenantFactory
from voices.enrollment import voice_profile_enroll_execute
from voices.models import VoiceProfile, VoiceReference

pytestmark = pytest.mark.django_db


def _upload(data: bytes, name: str = "../../etc/narrator.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/html")  # Type and name are ignored.


def test_voice_create_from_a_recording_stores_a_canonical_reference(api_client_for, speech_wav,
                                                                    django_capture_on_commit_callbacks):
    tenant = TenantFactory()

    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client_for(tenant).post(
            "/api/v1/voices", {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav)]},
            format="multipart",
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["status"]) == ("matched", "enrolling")
    assert body["engine_label"].startswith("matched approximation")
    reference = VoiceReference.objects.for_tenant(tenant).get()
    assert ".." not in reference.storage_path and "narrator" not in reference.storage_path
    assert reference.storage_path.startswith(f"tenants/{tenant.pk}/voices/")
    stored, rate = sf.read(default_storage.open(reference.storage_path, "rb"))
    assert rate == 24000 and stored.ndim == 1
    assert 3 <= body["references"][0]["speech_seconds"] <= 30
    assert "snr_db" in body["references"][0]["quality"]
    assert len(callbacks) == 1  # The enrollment job, sent only once the rows are committed.


def test_voice_create_with_a_rejected_file_stores_nothing(api_client_for, speech_wav):
    tenant = TenantFactory()
    html = b"<!doctype html><html><body>not audio</body></html>"

    response = api_client_for(tenant).post(
        "/api/v1/voices",
        {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav), _upload(html, "voice.wav")]},
        format="multipart",
    )

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_audio")
    assert response.json()["extra"]["file_index"] == 1
    assert not VoiceProfile.objects.for_tenant(tenant).exists()
    assert not default_storage.exists(f"tenants/{tenant.pk}/voices")


def test_voice_create_refuses_a_file_over_the_plans_upload_limit(api_client_for, speech_wav):
    tenant = TenantFactory(plan__upload_bytes=10_000)

    response = api_client_for(tenant).post(
        "/api/v1/voices", {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav)]},
        format="multipart",
    )

    assert (response.status_code, response.json()["code"]) == (413, "audio_too_large")


def test_voice_create_refuses_beyond_the_plans_cloned_voices(api_client_for, speech_wav):
    tenant = TenantFactory(plan__cloned_voices=0)

    response = api_client_for(tenant).post(
        "/api/v1/voices", {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav)]},
        format="multipart",
    )

    assert response.json()["extra"]["limit_name"] == "cloned_voices"


def test_voice_enrollment_searches_a_pack_at_least_as_close_as_the_catalog(api_client_for, speech_wav, settings):
    settings.PARLA_MATCH_EVALUATIONS = 8  # The five catalog packs and three candidates: enough to test.
    tenant = TenantFactory()
    client = api_client_for(tenant)
    created = client.post(
        "/api/v1/voices", {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav)]},
        format="multipart",
    ).json()

    voice_profile_enroll_execute(tenant_id=tenant.pk, profile_id=created["id"])
    voice_profile_enroll_execute(tenant_id=tenant.pk, profile_id=created["id"])  # Redelivered: no-op.

    profile = VoiceProfile.objects.for_tenant(tenant).get()
    assert profile.status == "ready", profile.error
    findings = profile.enrollment
    assert (findings["method"], findings["approximation"], findings["evaluations"]) == ("kokoro_pack_search", True, 8)
    assert findings["base_pack"] in findings["candidates"]
    assert findings["similarity"] >= findings["baseline_similarity"] == findings["candidates"][findings["base_pack"]]
    # The real Whisper gate ran: the chosen pack is as intelligible as the best catalog pack.
    assert 0 <= findings["wer"] <= findings["baseline_wer"] + 0.02
    assert findings["seconds"] > 0
    assert (findings["stage"], findings["progress"]) == ("ready", 1.0)
    assert client.get(f"/api/v1/voices/{profile.pk}").json()["progress"] == 1.0
    with np.load(default_storage.path(profile.conditioning_path)) as stored:  # the pack (+ any equaliser)
        pack = stored["pack"]
    assert pack.shape == (510, 1, 256) and np.isfinite(pack).all()
    # Eight evaluations leave no room for finalists: no validation, no equaliser.
    assert (findings["validation_similarity"], findings["equalizer_db"]) == (None, 0.0)
    result = render(tenant=tenant, request=RenderRequest(
        voice_id=profile.voice_id, text="Hello with my matched voice.", audio=AudioOptions(),
        conditioning_path=default_storage.path(profile.conditioning_path),
        conditioning_digest=profile.conditioning_digest,
    ))
    assert result.engine == "kokoro" and result.duration_seconds > 0.5


def test_voice_reference_delete_keeps_at_least_one(api_client_for, speech_wav):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    created = client.post(
        "/api/v1/voices", {"name": "Narrator", "engine": "kokoro", "references": [_upload(speech_wav)]},
        format="multipart",
    ).json()
    added = client.post(f"/api/v1/voices/{created['id']}/references", {"references": [_upload(speech_wav)]},
                        format="multipart")
    first, second = VoiceReference.objects.for_tenant(tenant).order_by("pk")

    removed = client.delete(f"/api/v1/voices/{created['id']}/references/{first.pk}")
    refused = client.delete(f"/api/v1/voices/{created['id']}/references/{second.pk}")

    assert added.status_code == 201 and removed.status_code == 204
    assert refused.status_code == 400
    assert not default_storage.exists(first.storage_path)
    assert VoiceReference.objects.for_tenant(tenant).count() == 1


@pytest.fixture
def tiny_xtts_enabled(settings, tmp_path):
    """A tiny random-weight XTTS in the real on-disk layout (no real weights can be fetched here)."""
    from synthesis.engines import registry
    from tests.synthesis import tiny_models

    tiny_models.build_xtts(tmp_path)
    settings.PARLA_MODEL_DIR = tmp_path
    settings.PARLA_ENGINES = ["piper", "kokoro", "xtts"]
    registry.reset_engines()
    yield
    registry.reset_engines()


def test_voice_auto_engine_clones_with_xtts_and_stores_latents_once(api_client_for, speech_wav, tiny_xtts_enabled):
    tenant = TenantFactory()
    created = api_client_for(tenant).post(
        "/api/v1/voices", {"name": "Clone", "engine": "auto", "references": [_upload(speech_wav)]},
        format="multipart",
    ).json()

    voice_profile_enroll_execute(tenant_id=tenant.pk, profile_id=created["id"])

    profile = VoiceProfile.objects.for_tenant(tenant).get()
    assert (created["kind"], profile.status) == ("cloned", "ready")
    assert created["engine_label"] == "cloned with XTTS (Coqui Public Model License (CPML): non-commercial)"
    assert created["commercial_use"] is False
    assert profile.enrollment["method"] == "xtts_latents"
    assert default_storage.exists(profile.conditioning_path)


def test_voice_enrollment_goes_to_the_queue_its_engine_needs(api_client_for, speech_wav, tiny_xtts_enabled,
                                                             django_capture_on_commit_callbacks):
    from voices.tasks.actors import voice_profile_enroll

    broker = voice_profile_enroll.broker  # The real Redis broker; no worker consumes here.
    queued = {}
    for queue in ("synthesis-gpu", "synthesis-cpu"):
        broker.flush(queue)
    tenant = TenantFactory()

    with django_capture_on_commit_callbacks(execute=True):
        for engine in ("xtts", "kokoro"):
            api_client_for(tenant).post(
                "/api/v1/voices", {"name": engine, "engine": engine, "references": [_upload(speech_wav)]},
                format="multipart",
            )
    for queue in ("synthesis-gpu", "synthesis-cpu"):
        queued[queue] = broker.client.hlen(f"{broker.namespace}:{queue}.msgs")
        broker.flush(queue)

    assert queued == {"synthesis-gpu": 1, "synthesis-cpu": 1}
