"""API → Redis → a real `rundramatiq` worker process → enrollment → the profile is ready."""

import os
import time

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics.models import EnrollmentUsage
from synthesis.engines import registry
from tenants.models import TenantQuota
from tests.helpers import start_manage, stop
from tests.synthesis import tiny_models
from tests.tenants.factories import TenantFactory
from voices.models import VoiceEnrollment, VoiceProfile


@pytest.mark.django_db(transaction=True)
def test_voice_enrollment_runs_on_a_real_worker_process(api_client_for, speech_wav, settings, tmp_path):
    # A tiny random-weight XTTS stands in for real weights, which cannot be fetched here.
    tiny_models.build_xtts(tmp_path / "models")
    settings.PARLA_MODEL_DIR = tmp_path / "models"
    settings.PARLA_ENGINES = ["piper", "kokoro", "xtts"]
    registry.reset_engines()
    database = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PARLA_MODEL_DIR": str(tmp_path / "models"),
        "PARLA_ENGINES": "piper,kokoro,xtts",
        "PARLA_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
    }
    worker = start_manage(
        "rundramatiq", "--processes", "1", "--threads", "1", "--queues", "synthesis-gpu",
        env=env, log_path=tmp_path / "worker.log",
    )
    try:
        tenant = TenantFactory(plan__concurrent_jobs=1)
        client = api_client_for(tenant)
        response = client.post(
            "/api/v1/voices",
            {"name": "Clone", "engine": "xtts",
             "references": [SimpleUploadedFile("narrator.wav", speech_wav)]},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        deadline = time.monotonic() + 180
        profile = VoiceProfile.objects.for_tenant(tenant).get()
        while profile.status == "enrolling" and time.monotonic() < deadline:
            time.sleep(0.5)
            profile.refresh_from_db()
    finally:
        stop(worker)
        registry.reset_engines()

    assert profile.status == "ready", (profile.error, (tmp_path / "worker.log").read_text()[-3000:])
    assert profile.enrollment["method"] == "xtts_latents"
    # The enrollment held the tenant's one job slot while it ran, and gave it back.
    enrollment = VoiceEnrollment.objects.for_tenant(tenant).get()
    assert (enrollment.status, enrollment.holds_slot, enrollment.attempts) == ("succeeded", False, 1)
    assert enrollment.worker_id  # the worker's presence id, for the upkeep to tell a dead one
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    usage = EnrollmentUsage.objects.for_tenant(tenant).get()
    assert usage.processing_seconds > 0
    assert client.get("/api/v1/usage").json()["enrollments"]["totals"]["enrollments"] == 1
