"""How many SQL statements a speech request costs: the web tier's part and the worker's.

Short texts are dominated by this bookkeeping (a 60-character request synthesises in about
0.2 s), so the counts are pinned here; bench/api_overhead.py measures what they cost.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import UsageRecord
from synthesis.jobs import synthesis_job_execute
from synthesis.models import SynthesisJob
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

TEXT = "The old lighthouse keeper climbed the narrow stairs at dawn."


def _statements(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"].split(None, 1)[0] for query in captured.captured_queries]


def _sql(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"].strip() for query in captured.captured_queries]


def _relaxes_its_commit(sql: str) -> bool:
    return "set_config('synchronous_commit', 'off', true)" in sql


def test_a_job_costs_one_transaction_to_create_and_one_to_settle(api_client_for, captured_jobs):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    client.post("/api/v1/jobs", {"text": "Warm up: the usage period and quota rows now exist."}, format="json")

    counts = []
    for _ in range(2):  # a miss, then the same text again: a cache hit
        with CaptureQueriesContext(connection) as web:
            response = client.post("/api/v1/jobs", {"text": TEXT, "format": "wav"}, format="json")
        job_id = response.json()["id"]
        with CaptureQueriesContext(connection) as worker:
            synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)
        counts.append((_statements(web), _statements(worker)))
        assert SynthesisJob.objects.get(pk=job_id).status == "succeeded"

    (web_miss, run_miss), (web_hit, run_hit) = counts
    relaxed = ["BEGIN", "SET"]  # a job transaction: its commit does not wait for the log flush
    # Key lookup; one transaction: the slot and the hold (the slot's and the period's conditional
    # updates and the reservation row in one statement), the job row.
    assert web_miss == web_hit == ["SELECT", *relaxed, "WITH", "INSERT", "COMMIT"]
    # Take the job (one conditional UPDATE ... RETURNING), look up the cache, then settle in
    # one statement (synthesis.jobs.statements, assembled from the tables' owners' CTEs): job,
    # hold, period, slot, usage record, rollup marker and the new cache entry. Each is its own
    # transaction and relaxes its own commit: no BEGIN, SET or COMMIT around them.
    take, settle = ["WITH"], ["WITH"]
    assert run_miss == [*take, "SELECT", *settle]
    assert run_hit == [*take, "SELECT", "UPDATE", *settle]  # the hit counts itself
    assert all(_relaxes_its_commit(sql) for sql in _sql(worker) if not sql.startswith("SELECT"))
    billed = UsageRecord.objects.for_tenant(tenant).order_by("pk").values_list("characters_billed", "cached")
    assert list(billed) == [(len(TEXT), False), (0, True)]


def test_with_durable_job_commits_every_job_transaction_waits_for_the_log_flush(api_client_for, captured_jobs,
                                                                                settings):
    settings.PARLA_ASYNC_JOB_COMMITS = False
    tenant = TenantFactory()
    client = api_client_for(tenant)

    with CaptureQueriesContext(connection) as captured:
        job_id = client.post("/api/v1/jobs", {"text": TEXT, "format": "wav"}, format="json").json()["id"]
        synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    assert SynthesisJob.objects.get(pk=job_id).status == "succeeded"
    assert "SET" not in _statements(captured)
    assert not any(_relaxes_its_commit(sql) for sql in _sql(captured))


def test_a_relaxed_job_step_leaves_the_session_durable(api_client_for, captured_jobs):
    # set_config(..., true) lasts until the end of its transaction: the statement's own.
    tenant = TenantFactory()
    client = api_client_for(tenant)
    job_id = client.post("/api/v1/jobs", {"text": TEXT, "format": "wav"}, format="json").json()["id"]

    synthesis_job_execute(tenant_id=tenant.pk, job_id=job_id)

    assert SynthesisJob.objects.get(pk=job_id).status == "succeeded"
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
