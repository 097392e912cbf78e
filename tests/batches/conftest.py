import pytest


@pytest.fixture
def dispatched(monkeypatch):
    """Record batches whose items would be dispatched, instead of using a broker.

    These tests run the actors' bodies themselves; flows through real worker processes are
    in test_batch_worker.py.
    """
    sent: list[int] = []
    monkeypatch.setattr("batches.services._enqueue_items", lambda batch, job_ids: sent.append(batch.pk))
    monkeypatch.setattr("synthesis.jobs.create.enqueue", lambda job: None)
    return sent


@pytest.fixture
def run_batch(monkeypatch):
    """Run every queued item of a batch, then the export, in this process (as workers would)."""
    from django.db import transaction

    def run(batch):
        from batches.export import batch_export_execute
        from batches.models import Batch
        from synthesis.jobs import synthesis_job_execute
        from synthesis.models import SynthesisJob

        jobs = SynthesisJob.objects.for_tenant(batch.tenant_id).filter(batch=batch, status="queued")
        for job_id in jobs.order_by("batch_index").values_list("pk", flat=True):
            synthesis_job_execute(tenant_id=batch.tenant_id, job_id=job_id)
        batch = Batch.objects.for_tenant(batch.tenant_id).get(pk=batch.pk)
        if batch.finished:
            batch_export_execute(tenant_id=batch.tenant_id, batch_id=batch.pk)
        return Batch.objects.for_tenant(batch.tenant_id).get(pk=batch.pk)

    from batches.tasks.actors import batch_export

    # Finishing hooks run on commit; these tests run inside one transaction, so run them now.
    # The export is run by run() itself rather than through the broker.
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    monkeypatch.setattr(batch_export, "send", lambda *args, **kwargs: None)
    return run
