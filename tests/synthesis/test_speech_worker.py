"""API → PostgreSQL + Redis → a real `rundramatiq` worker process → engine → storage → response."""

import io
import threading

import pytest
import soundfile as sf

from analytics.models import UsageRecord
from synthesis.models import SynthesisJob
from tenants.models import UsagePeriod
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

LONG_TEXT = (
    "The first sentence arrives quickly. A second one follows right after it. "
    "Then a third sentence closes the paragraph, and the stream is done."
)


def test_sync_speech_returns_audio_with_job_headers(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)

    response = client.post("/api/v1/speech", {"text": "Hello from a worker.", "format": "flac"}, format="json")

    assert response.status_code == 200, getattr(response, "data", None)
    data = b"".join(response.streaming_content)
    samples, rate = sf.read(io.BytesIO(data))
    assert response["Content-Type"] == "audio/flac"
    assert float(response["X-Parla-Audio-Seconds"]) == pytest.approx(len(samples) / rate, abs=0.01)
    assert response["X-Parla-Characters"] == str(len("Hello from a worker."))
    assert response["X-Parla-Cache"] == "miss"
    assert response["X-Parla-Engine"] == "piper"
    job = SynthesisJob.objects.for_tenant(tenant).get(pk=response["X-Parla-Job-Id"])
    assert (job.status, job.mode) == ("succeeded", "sync")
    assert UsageRecord.objects.for_tenant(tenant).get().job_id == job.pk


def test_sync_speech_second_identical_request_is_a_cache_hit(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    body = {"text": "Cached words.", "format": "wav"}
    client.post("/api/v1/speech", body, format="json")

    second = client.post("/api/v1/speech", body, format="json")

    assert second.status_code == 200
    assert second["X-Parla-Cache"] == "hit"
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == len("Cached words.")


def test_stream_delivers_audio_in_several_chunks_before_the_job_ends(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)

    response = client.post("/api/v1/speech/stream", {"text": LONG_TEXT, "format": "pcm", "sample_rate": 16000},
                           format="json")

    assert response.status_code == 200, getattr(response, "data", None)
    assert response["Content-Type"].startswith("audio/pcm; rate=16000")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 3  # One per sentence at least: audio arrives sentence by sentence.
    data = b"".join(chunks)
    job = SynthesisJob.objects.for_tenant(tenant).get(pk=response["X-Parla-Job-Id"])
    assert job.status == "succeeded"
    assert job.size_bytes == len(data)
    assert len(data) / 2 / 16000 == pytest.approx(job.audio_seconds, abs=0.01)


def test_stream_wav_is_stored_with_its_sizes_filled_in(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)

    response = client.post("/api/v1/speech/stream", {"text": LONG_TEXT, "format": "wav"}, format="json")
    streamed = b"".join(response.streaming_content)
    job_id = response["X-Parla-Job-Id"]
    stored = b"".join(client.get(f"/api/v1/jobs/{job_id}/audio").streaming_content)

    assert streamed[:4] == b"RIFF"
    samples, rate = sf.read(io.BytesIO(stored))
    assert len(samples) / rate > 3
    assert len(stored) == len(streamed)


def test_async_job_finishes_on_the_worker(api_client_for, cpu_worker):
    import time

    tenant = TenantFactory()
    client = api_client_for(tenant)

    created = client.post("/api/v1/jobs", {"text": "An asynchronous job.", "format": "mp3"}, format="json").json()
    deadline = time.monotonic() + 60
    detail = created
    while detail["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        detail = client.get(f"/api/v1/jobs/{created['id']}").json()

    assert detail["status"] == "succeeded", (detail, cpu_worker.log_path.read_text()[-2000:])
    audio = client.get(detail["audio_url"])
    assert audio["Content-Type"] == "audio/mpeg"
    assert sf.info(io.BytesIO(b"".join(audio.streaming_content))).duration > 0.5


def test_parallel_requests_beyond_the_plan_are_refused_before_queueing(api_client_for, cpu_worker):
    tenant = TenantFactory(plan__concurrent_jobs=1)
    client = api_client_for(tenant)
    statuses = []

    def call():
        from django.db import connection

        response = client.post("/api/v1/jobs", {"text": LONG_TEXT}, format="json")
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses).count(202) >= 1
    assert 429 in statuses
    assert SynthesisJob.objects.for_tenant(tenant).count() == statuses.count(202)
