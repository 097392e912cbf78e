"""Streams are billed for the audio they deliver, and stop when nobody listens.

Through the real API, PostgreSQL, Redis and a real `rundramatiq` worker: a stream cancelled
while it plays ends soon after, its worker stops at the next sentence, and the tenant pays
for what was sent; a client that hangs up stops the worker the same way; a reader that
pauses never has more than a bounded backlog waiting for it in Redis.
"""

import time

import pytest
import redis
from django.conf import settings

from analytics.models import UsageRecord
from config.runtime.events import STREAM_BACKLOG_EVENTS
from synthesis.models import SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

# 120 short sentences: minutes of audio, far more than a worker renders before a reader that
# took one chunk cancels.
LONG = " ".join(f"This is sentence number {n} of a long reading." for n in range(1, 121))
PCM = {"format": "pcm", "sample_rate": 16000}


def _stream(client):
    response = client.post("/api/v1/speech/stream", {"text": LONG, **PCM}, format="json")
    assert response.status_code == 200, getattr(response, "data", None)
    return response, int(response["X-Parla-Job-Id"])


def _seconds(chunks: list[bytes]) -> float:
    return len(b"".join(chunks)) / (2 * 16000)


def _wait_until_settled(tenant, job_id: int, timeout: float = 120) -> SynthesisJob:
    """The worker has stopped and given back the slot (jobs_in_flight falls only then)."""
    deadline = time.monotonic() + timeout
    while True:
        job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
        if job.finished and not job.holds_slot:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still holds its slot: {job.status}"
        time.sleep(0.2)


def _assert_billed_for_part(tenant, job: SynthesisJob) -> int:
    usage = UsageRecord.objects.for_tenant(tenant).get(job=job)
    assert 0 < usage.characters_billed < job.characters / 2
    reservation = QuotaReservation.objects.for_tenant(tenant).get(pk=job.reservation_id)
    assert (reservation.state, reservation.characters_settled) == ("settled", usage.characters_billed)
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_reserved, period.characters_used) == (0, usage.characters_billed)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    return usage.characters_billed


def test_cancelling_a_playing_stream_ends_it_and_bills_what_was_sent(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    response, job_id = _stream(client)
    chunks = iter(response.streaming_content)
    received = [next(chunks)]

    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    received.extend(chunks)  # the whole response: it ends once the worker has stopped

    job = _wait_until_settled(tenant, job_id)
    assert job.status == "cancelled"
    # At most the chunks published ahead of the reader when it cancelled, then nothing.
    assert _seconds(received) < len(LONG) / 25 / 2
    billed = _assert_billed_for_part(tenant, job)
    assert UsageRecord.objects.for_tenant(tenant).get(job=job).audio_seconds == pytest.approx(
        _seconds(received), abs=1.0)
    assert billed >= len(LONG) * len(received) // 2 // 120 // 2  # about a sentence a chunk, or more


def test_a_client_that_hangs_up_stops_the_worker_and_pays_for_what_it_got(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    response, job_id = _stream(client)
    next(iter(response.streaming_content))

    response.close()  # the server closes the relay when the client goes

    job = _wait_until_settled(tenant, job_id)
    assert (job.status, job.error_code) == ("cancelled", "stream_abandoned")
    _assert_billed_for_part(tenant, job)


def test_a_paused_reader_has_a_bounded_backlog_with_a_ttl(api_client_for, cpu_worker):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    response, job_id = _stream(client)
    chunks = iter(response.streaming_content)
    received = [next(chunks)]
    key = f"{settings.CACHES['default'].get('KEY_PREFIX', 'parla')}:job:{job_id}:events"
    store = redis.Redis.from_url(settings.REDIS_URL)

    lengths = []
    for _ in range(20):  # the reader pauses for 4 s while the worker renders on
        lengths.append(store.llen(key))
        time.sleep(0.2)
    ttl = store.ttl(key)
    received.extend(chunks)

    assert max(lengths) <= STREAM_BACKLOG_EVENTS + 1
    assert max(lengths) > 1  # the worker did run ahead
    assert 0 < ttl <= 15 * 60
    job = _wait_until_settled(tenant, job_id)
    assert job.status == "succeeded"
    assert job.audio_seconds == pytest.approx(_seconds(received), abs=0.05)
    assert not store.exists(key)


def test_a_stream_that_fails_after_audio_went_out_is_billed_for_that_audio(api_client_for, captured_jobs,
                                                                             settings):
    # In this process (the faulty engine is plugged in here): the worker's body runs the job.
    from config.runtime.events import stream_reader_mark
    from synthesis.engines import registry
    from synthesis.jobs import synthesis_job_execute

    settings.PARLA_ENGINES = ["piper", "faulty"]
    settings.PARLA_EXTRA_ENGINES = {"faulty": "tests.batches.faulty_engine.FaultyEngine"}
    registry.reset_engines()
    try:
        tenant = TenantFactory()
        text = "One sentence here. Two sentences now. Three is where it fails. Four is never read."
        job_id = api_client_for(tenant).post("/api/v1/speech/stream", {"text": text, "voice": "faulty:flaky",
                                                                       **PCM}, format="json")["X-Parla-Job-Id"]
        stream_reader_mark(job_id=int(job_id))  # a relay is reading

        synthesis_job_execute(tenant_id=tenant.pk, job_id=int(job_id))
    finally:
        registry.reset_engines()

    job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
    assert (job.status, job.error_code) == ("failed", "synthesis_failed")
    usage = UsageRecord.objects.for_tenant(tenant).get(job=job)
    # Two of four sentences were sent: about half the characters, never all of them.
    assert len(text) * 0.3 < usage.characters_billed < len(text) * 0.7
    assert usage.audio_seconds == pytest.approx(2.25, abs=0.3)
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == usage.characters_billed
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
