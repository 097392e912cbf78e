"""Jobs whose worker process died while running them: counted, run alone, failed at the limit.

The worker's death is staged here by a job row that names a worker id with no heartbeat (the
flow with real processes killing themselves is in tests/batches/test_batch_worker.py)."""

import threading
import time

import pytest

from analytics.models import UsageFailure, UsageRecord
from synthesis.jobs import (
    cancelled_jobs_release_all_tenants,
    synthesis_job_cancel,
    synthesis_jobs_recover_all_tenants,
)
from synthesis.jobs.execute import _Quarantine
from synthesis.models import SynthesisJob
from tenants.models import QuotaReservation, TenantQuota
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _running_on_a_dead_worker(api_client_for, tenant) -> SynthesisJob:
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": "Hello there."}, format="json").json()["id"]
    SynthesisJob.objects.for_tenant(tenant).filter(pk=job_id).update(
        status="running", attempts=1, worker_id="host:1:dead")
    return SynthesisJob.objects.for_tenant(tenant).get(pk=job_id)


def _die_again(job: SynthesisJob) -> None:
    SynthesisJob.objects.for_tenant(job.tenant_id).filter(pk=job.pk).update(
        status="running", attempts=2, worker_id="host:2:dead")


def test_a_job_runs_again_after_one_worker_death_and_fails_refunded_after_two(api_client_for, captured_jobs,
                                                                               settings):
    settings.PARLA_JOB_WORKER_DEATHS = 2
    tenant = TenantFactory()
    job = _running_on_a_dead_worker(api_client_for, tenant)

    assert synthesis_jobs_recover_all_tenants(broker_lost=False) == 1
    job.refresh_from_db()
    assert (job.status, job.worker_deaths) == ("queued", 1)

    _die_again(job)
    synthesis_jobs_recover_all_tenants(broker_lost=False)

    job.refresh_from_db()
    assert (job.status, job.worker_deaths, job.error_code) == ("failed", 2, "synthesis_failed")
    assert "stopped 2 times" in job.error_message
    assert QuotaReservation.objects.for_tenant(tenant).get().state == "released"
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    assert UsageFailure.objects.for_tenant(tenant).count() == 1
    assert not UsageRecord.objects.for_tenant(tenant).exists()


def test_embedded_mode_fails_a_job_at_its_first_worker_death(api_client_for, captured_jobs, settings):
    # In embedded mode the worker is the server: the job must not bring it down again.
    settings.PARLA_JOB_WORKER_DEATHS = 1
    tenant = TenantFactory()
    job = _running_on_a_dead_worker(api_client_for, tenant)

    synthesis_jobs_recover_all_tenants(broker_lost=False)

    job.refresh_from_db()
    assert (job.status, job.worker_deaths) == ("failed", 1)


def test_a_redelivered_message_counts_the_death_too(api_client_for, captured_jobs, settings):
    from synthesis.jobs import synthesis_job_execute

    settings.PARLA_JOB_WORKER_DEATHS = 1
    tenant = TenantFactory()
    job = _running_on_a_dead_worker(api_client_for, tenant)

    synthesis_job_execute(tenant_id=tenant.pk, job_id=job.pk)  # the broker delivers it again

    job.refresh_from_db()
    assert (job.status, job.worker_deaths) == ("failed", 1)


def test_a_job_cancelled_while_its_worker_was_dying_gives_its_holds_back(api_client_for, captured_jobs):
    tenant = TenantFactory()
    job = _running_on_a_dead_worker(api_client_for, tenant)

    synthesis_job_cancel(tenant=tenant, job=job)
    job.refresh_from_db()
    assert (job.status, job.holds_slot) == ("cancelled", True)  # a live worker would settle it
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 1

    assert cancelled_jobs_release_all_tenants() == 1

    job.refresh_from_db()
    assert not job.holds_slot
    assert QuotaReservation.objects.for_tenant(tenant).get().state == "released"
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    assert cancelled_jobs_release_all_tenants() == 0


def test_quarantine_runs_a_suspect_alone():
    quarantine = _Quarantine()
    log: list[str] = []
    normal_running = threading.Event()
    release_normal = threading.Event()

    def normal(name: str, hold: threading.Event | None = None):
        with quarantine(suspect=False):
            log.append(f"{name} start")
            if hold is not None:
                normal_running.set()
                hold.wait(10)
            log.append(f"{name} end")

    def suspect():
        with quarantine(suspect=True):
            log.append("suspect start")
            time.sleep(0.2)
            log.append("suspect end")

    first = threading.Thread(target=normal, args=("first", release_normal))
    first.start()
    normal_running.wait(10)
    waiting_suspect = threading.Thread(target=suspect)
    waiting_suspect.start()
    time.sleep(0.1)
    later = threading.Thread(target=normal, args=("later",))
    later.start()  # arrives while the suspect waits: it waits for the suspect
    time.sleep(0.1)
    release_normal.set()
    for thread in (first, waiting_suspect, later):
        thread.join(10)

    assert log == ["first start", "first end", "suspect start", "suspect end", "later start", "later end"]


@pytest.mark.django_db(transaction=True)
def test_a_job_waiting_behind_a_suspect_is_still_queued(api_client_for, captured_jobs, monkeypatch):
    # If the suspect kills the process, a job that only waited for its turn must not count a
    # death: it waits before it is taken.
    from django.db import connection

    from synthesis.jobs import execute

    quarantine = _Quarantine()
    monkeypatch.setattr(execute, "worker_death_quarantine", quarantine)
    tenant = TenantFactory()
    job_id = api_client_for(tenant).post("/api/v1/jobs", {"text": "Hello there."}, format="json").json()["id"]
    suspect_running, release = threading.Event(), threading.Event()

    def suspect():
        with quarantine(suspect=True):
            suspect_running.set()
            release.wait(10)

    def waiting_job():
        try:
            execute.synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
        finally:
            connection.close()

    holder = threading.Thread(target=suspect)
    holder.start()
    suspect_running.wait(10)
    waiter = threading.Thread(target=waiting_job)
    waiter.start()
    time.sleep(0.5)

    assert SynthesisJob.objects.for_tenant(tenant).get(pk=job_id).status == "queued"
    release.set()
    holder.join(10)
    waiter.join(60)
    assert SynthesisJob.objects.for_tenant(tenant).get(pk=job_id).status == "succeeded"


def test_recovery_marks_a_suspects_message(api_client_for, captured_jobs, monkeypatch,
                                           django_capture_on_commit_callbacks):
    from synthesis.tasks.actors import synthesis_job_run

    tenant = TenantFactory()
    job = _running_on_a_dead_worker(api_client_for, tenant)
    monkeypatch.undo()  # captured_jobs replaced the enqueue: this test reads the real messages
    sent = []
    monkeypatch.setattr(synthesis_job_run.broker, "enqueue", lambda message, **kw: sent.append(message))

    with django_capture_on_commit_callbacks(execute=True):
        synthesis_jobs_recover_all_tenants(broker_lost=False)

    assert [(m.args, m.kwargs) for m in sent] == [((tenant.pk, job.pk), {"suspect": True})]
