"""Voices whose engine needs a GPU: routed to synthesis-gpu, waiting or falling back honestly."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from config.runtime.presence import worker_forget, worker_heartbeat
from synthesis.jobs import synthesis_job_execute
from synthesis.models import SynthesisJob
from tests.tenants.factories import TenantFactory
from tests.voices.factories import VoiceProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_xtts(settings, tmp_path):
    """A tiny random-weight XTTS stands in for the real weights, which cannot be fetched here."""
    from synthesis.engines import registry
    from tests.synthesis import tiny_models

    tiny_models.build_xtts(tmp_path / "models")
    settings.PARLA_MODEL_DIR = tmp_path / "models"
    settings.PARLA_ENGINES = ["piper", "xtts"]
    registry.reset_engines()
    yield tmp_path
    registry.reset_engines()


@pytest.fixture
def cloned_voice(tiny_xtts):
    from synthesis.engines.registry import loaded_engine
    from tests.synthesis import tiny_models

    xtts = loaded_engine("xtts")
    reference = tiny_models.write_reference_wav(tiny_xtts / "ref.wav", seconds=3.0, pitch=160.0)
    local = tiny_xtts / "conditioning.pth"
    xtts.save_conditioning(xtts.compute_conditioning([reference]), local)
    tenant = TenantFactory()
    profile = VoiceProfileFactory(tenant=tenant, kind="cloned", engine="xtts", base_voice_id="", status="ready")
    profile.conditioning_path = default_storage.save(f"tenants/{tenant.pk}/voices/{profile.pk}/conditioning.pth",
                                                     ContentFile(local.read_bytes()))
    profile.conditioning_digest = "d1"
    profile.save()
    return profile


@pytest.fixture
def gpu_worker_present():
    worker_heartbeat(worker_id="test-gpu", info={"queues": ["synthesis-gpu"], "engines_loaded": [], "device": "cuda"})
    yield
    worker_forget(worker_id="test-gpu")


def test_cloned_voice_without_a_gpu_worker_waits_in_the_gpu_queue(api_client_for, cloned_voice, captured_jobs):
    client = api_client_for(cloned_voice.tenant)

    response = client.post("/api/v1/speech", {"text": "Hello.", "voice": str(cloned_voice.pk)}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["queue"], body["waiting_for"], body["engine"]) == ("synthesis-gpu", "gpu_worker", "xtts")
    assert "No GPU worker is running" in body["message"]


def test_cloned_voice_with_fallback_is_served_by_the_default_voice_and_says_so(
    api_client_for, cloned_voice, captured_jobs, settings
):
    settings.PARLA_SYNC_WAIT_SECONDS = 0.05
    client = api_client_for(cloned_voice.tenant)

    body = client.post("/api/v1/jobs", {"text": "Hello.", "voice": str(cloned_voice.pk), "fallback": True},
                       format="json").json()
    synthesis_job_execute(tenant_id=cloned_voice.tenant_id, job_id=body["id"])
    audio = client.get(f"/api/v1/jobs/{body['id']}/audio")

    assert (body["engine"], body["queue"], body["fallback_used"]) == ("piper", "synthesis-cpu", True)
    assert body["requested_voice"] == cloned_voice.voice_id
    assert audio["X-Parla-Engine"] == "piper"
    assert audio["X-Parla-Fallback"] == f"{cloned_voice.voice_id} -> piper:en_US-joe-medium"


def test_fallback_is_not_used_while_a_gpu_worker_runs(api_client_for, cloned_voice, captured_jobs, gpu_worker_present):
    client = api_client_for(cloned_voice.tenant)

    body = client.post("/api/v1/jobs", {"text": "Hello.", "voice": str(cloned_voice.pk), "fallback": True},
                       format="json").json()

    assert (body["engine"], body["queue"], body["fallback_used"], body["waiting_for"]) == (
        "xtts", "synthesis-gpu", False, None)


def test_cloned_voice_speaks_from_its_stored_latents_on_the_gpu_queue(api_client_for, cloned_voice, captured_jobs):
    client = api_client_for(cloned_voice.tenant)
    job_id = client.post("/api/v1/jobs", {"text": "Hello there.", "voice": str(cloned_voice.pk)},
                         format="json").json()["id"]

    synthesis_job_execute(tenant_id=cloned_voice.tenant_id, job_id=job_id)

    job = SynthesisJob.objects.for_tenant(cloned_voice.tenant).get(pk=job_id)
    assert (job.status, job.engine, job.voice_id) == ("succeeded", "xtts", cloned_voice.voice_id)
    assert job.audio_seconds > 0


def test_cloned_voice_whose_engine_is_not_installed_is_a_clear_error(api_client_for):
    # XTTS is not in the default PARLA_ENGINES: its weights are not on this host.
    profile = VoiceProfileFactory(kind="cloned", engine="xtts", base_voice_id="", status="ready")

    response = api_client_for(profile.tenant).post("/api/v1/speech", {"text": "Hi", "voice": str(profile.pk)},
                                                   format="json")

    assert (response.status_code, response.json()["code"]) == (409, "engine_unavailable")
    assert "xtts" in response.json()["message"]
    assert not SynthesisJob.objects.for_tenant(profile.tenant).exists()
