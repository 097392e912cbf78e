"""A worker killed in the middle of a job: the job is run again elsewhere, charged once."""

import os
import signal
import time

import pytest
from django.conf import settings as django_settings

from analytics.models import UsageRecord
from config.runtime.presence import worker_forget, workers_alive
from config.runtime.upkeep import upkeep_run_all_tenants
from synthesis.models import SynthesisJob
from tenants.models import TenantQuota, UsagePeriod
from tests.helpers import start_manage, stop
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Long enough that the worker is still synthesising when it is killed.
TEXT = " ".join(f"This is sentence number {n} of a long job that takes a while to read aloud." for n in range(20))


def _worker(tmp_path, name: str):
    database = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "PARLA_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
    }
    log_path = tmp_path / f"{name}.log"
    process = start_manage("rundramatiq", "--processes", "1", "--threads", "1", "--queues", "synthesis-cpu",
                           env=env, log_path=log_path)
    process.log_path = log_path
    return process


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_job_of_a_killed_worker_is_recovered_and_charged_once(api_client_for, tmp_path):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    first = _worker(tmp_path, "first")
    try:
        job_id = client.post("/api/v1/jobs", {"text": TEXT}, format="json").json()["id"]
        job = SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)
        _wait(lambda: job.refresh_from_db() or job.status == "running", 120, "the job to start")
        dead_worker = job.worker_id
        os.killpg(first.pid, signal.SIGKILL)  # No shutdown hooks run: like a host that died.
        first.wait()
    finally:
        stop(first)
    # Its heartbeat would lapse within three heartbeat intervals; drop it now rather than wait.
    worker_forget(worker_id=dead_worker)
    assert dead_worker and dead_worker not in {w["id"] for w in workers_alive()}

    second = _worker(tmp_path, "second")
    try:
        _wait(lambda: any(w["id"] != dead_worker for w in workers_alive()), 120, "the second worker")
        recovered = upkeep_run_all_tenants()  # What a worker's upkeep thread runs each minute.
        _wait(lambda: job.refresh_from_db() or job.finished, 240, "the recovered job")
    finally:
        stop(second)

    assert recovered["jobs_requeued"] == 1
    assert job.status == "succeeded", second.log_path.read_text()[-3000:]
    assert job.attempts == 2
    assert job.worker_id != dead_worker
    assert UsageRecord.objects.for_tenant(tenant).count() == 1
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_used, period.characters_reserved) == (job.characters, 0)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
