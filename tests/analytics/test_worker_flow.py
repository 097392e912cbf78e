"""Through the real broker and a real worker process: the job's usage record is rolled up by
the rollup actor that its commit enqueued."""

import time

import pytest

from analytics.models import UsageDaily, UsageRecord, UsageRollupPending
from tests.helpers import stop
from tests.synthesis.conftest import start_cpu_worker
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def rollup_worker(django_db_setup, tmp_path_factory):
    """A real worker that schedules each tenant's rollup a second after its jobs finish
    (other tests' workers leave rollups to the upkeep: see config/settings/test.py)."""
    process = start_cpu_worker(tmp_path_factory, PARLA_USAGE_ROLLUP_DELAY_SECONDS="1")
    yield process
    stop(process)


def test_speech_through_a_worker_is_recorded_once_and_rolled_up(api_client_for, rollup_worker):
    tenant = TenantFactory(time_zone="Europe/Berlin")
    client = api_client_for(tenant)

    response = client.post("/api/v1/speech", {"text": "Counted once, rolled up once.", "format": "wav"},
                           format="json")

    assert response.status_code == 200, response.content[:500]
    deadline = time.monotonic() + 60
    while UsageRollupPending.objects.for_tenant(tenant).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    record = UsageRecord.objects.for_tenant(tenant).get()
    daily = UsageDaily.objects.for_tenant(tenant).get()
    assert record.job_id == int(response["X-Parla-Job-Id"])
    assert (daily.day, daily.requests, daily.characters_billed) == (
        record.created_at.astimezone(tenant.tzinfo).date(), 1, record.characters_billed)
    assert daily.api_key_id == client.api_key.pk
    usage = client.get("/api/v1/usage", {"group_by": "key"}).json()
    assert [(row["key"], row["requests"]) for row in usage["rows"]] == [(str(client.api_key.pk), 1)]
