"""The daily rollups always equal the ledger: after incremental runs, replays, rebuilds,
time-zone changes and runs racing each other."""

import datetime as dt
import random
import threading
from collections import defaultdict

import pytest
from django.db import connection

from analytics.models import UsageDaily, UsageFailure, UsageRecord, UsageRollupPending
from analytics.rollups import MEASURES, usage_rollup_rebuild, usage_rollup_run, usage_rollup_run_all_tenants
from tenants.models import Tenant
from tests.analytics.factories import failure_at, record_at, utc
from tests.tenants.factories import ApiKeyFactory, TenantFactory

pytestmark = pytest.mark.django_db

VOICES = [("piper:en_US-joe-medium", "piper"), ("kokoro:af_heart", "kokoro"), ("piper:de_DE-thorsten", "piper")]


def ledger_buckets(tenant: Tenant) -> dict:
    """The ledger summed by hand, in Python, per (local day, voice, engine, key)."""
    tenant.refresh_from_db()
    sums = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for record in UsageRecord.objects.for_tenant(tenant):
        bucket = sums[(record.created_at.astimezone(tenant.tzinfo).date(), record.voice_id, record.engine,
                       record.api_key_id)]
        bucket["requests"] += 1
        bucket["characters"] += record.characters
        bucket["characters_billed"] += record.characters_billed
        bucket["audio_seconds"] += record.audio_seconds
        bucket["processing_seconds"] += record.processing_seconds
        bucket["cached_requests"] += int(record.cached)
    for failure in UsageFailure.objects.for_tenant(tenant):
        sums[(failure.created_at.astimezone(tenant.tzinfo).date(), failure.voice_id, failure.engine,
              failure.api_key_id)]["errors"] += 1
    return {key: _rounded(values) for key, values in sums.items()}


def rollup_buckets(tenant: Tenant) -> dict:
    return {
        (row.day, row.voice_id, row.engine, row.api_key_id): _rounded({name: getattr(row, name) for name in MEASURES})
        for row in UsageDaily.objects.for_tenant(tenant)
    }


def _rounded(values: dict) -> dict:
    return {name: round(value, 6) if isinstance(value, float) else value for name, value in values.items()}


def random_rows(tenant, rng: random.Random, count: int, keys: list) -> None:
    start = utc(2026, 3, 27)  # Across a daylight-saving change in Europe (29 March).
    for _ in range(count):
        at = start + dt.timedelta(minutes=rng.randrange(0, 6 * 24 * 60))
        voice_id, engine = rng.choice(VOICES)
        api_key = rng.choice(keys)
        if rng.random() < 0.1:
            failure_at(tenant, at, voice_id=voice_id, engine=engine, api_key=api_key)
        else:
            record_at(tenant, at, voice_id=voice_id, engine=engine, api_key=api_key,
                      characters=rng.randrange(1, 5000), cached=rng.random() < 0.2,
                      audio_seconds=round(rng.uniform(0.1, 90), 3), processing_seconds=round(rng.uniform(0.01, 9), 3))


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_rollups_equal_the_ledger_after_random_inserts_replays_and_rebuilds(time_zone):
    rng = random.Random(f"rollups-{time_zone}")
    tenant = TenantFactory(time_zone=time_zone)
    keys = [None, ApiKeyFactory.create(tenant=tenant), ApiKeyFactory.create(tenant=tenant)]

    random_rows(tenant, rng, 60, keys)
    usage_rollup_run(tenant_id=tenant.pk)
    assert rollup_buckets(tenant) == ledger_buckets(tenant)

    random_rows(tenant, rng, 40, keys)
    usage_rollup_run(tenant_id=tenant.pk)
    usage_rollup_run(tenant_id=tenant.pk)  # A duplicate message changes nothing.
    assert rollup_buckets(tenant) == ledger_buckets(tenant)
    assert not UsageRollupPending.objects.for_tenant(tenant).exists()

    random_rows(tenant, rng, 30, keys)  # Not rolled up yet when the rebuild starts.
    usage_rollup_rebuild(tenant=tenant, start=dt.date(2026, 3, 28), end=dt.date(2026, 3, 30))
    assert rollup_buckets(tenant) == ledger_buckets(tenant)

    usage_rollup_rebuild(tenant=tenant)
    usage_rollup_rebuild(tenant=tenant, start=dt.date(2026, 3, 29), end=dt.date(2026, 3, 29))
    usage_rollup_run(tenant_id=tenant.pk)
    assert rollup_buckets(tenant) == ledger_buckets(tenant)


def test_rollup_of_one_tenant_leaves_other_tenants_alone():
    mine, theirs = TenantFactory(), TenantFactory()
    record_at(mine, utc(2026, 4, 2, 10))
    record_at(theirs, utc(2026, 4, 2, 10))

    usage_rollup_run(tenant_id=mine.pk)

    assert UsageDaily.objects.for_tenant(mine).count() == 1
    assert not UsageDaily.objects.for_tenant(theirs).exists()
    assert UsageRollupPending.objects.for_tenant(theirs).count() == 1


def test_rollup_run_all_tenants_takes_every_pending_row():
    tenants = [TenantFactory(), TenantFactory(time_zone="Asia/Kolkata")]
    for tenant in tenants:
        record_at(tenant, utc(2026, 4, 2, 20))
        failure_at(tenant, utc(2026, 4, 2, 21))

    added = usage_rollup_run_all_tenants()

    assert added == 4
    for tenant in tenants:
        assert rollup_buckets(tenant) == ledger_buckets(tenant)


def test_a_record_at_2330_utc_is_the_next_day_in_berlin_and_the_same_day_in_utc():
    berlin, utc_tenant = TenantFactory(time_zone="Europe/Berlin"), TenantFactory(time_zone="UTC")
    for tenant in (berlin, utc_tenant):
        record_at(tenant, utc(2026, 1, 14, 23, 30))
        usage_rollup_run(tenant_id=tenant.pk)

    assert UsageDaily.objects.for_tenant(berlin).get().day == dt.date(2026, 1, 15)
    assert UsageDaily.objects.for_tenant(utc_tenant).get().day == dt.date(2026, 1, 14)


def test_changing_the_tenants_time_zone_moves_its_days_on_the_next_run():
    tenant = TenantFactory(time_zone="UTC")
    record_at(tenant, utc(2026, 1, 14, 23, 30))
    usage_rollup_run(tenant_id=tenant.pk)
    Tenant.objects.filter(pk=tenant.pk).update(time_zone="Europe/Berlin")

    usage_rollup_run(tenant_id=tenant.pk)

    assert UsageDaily.objects.for_tenant(tenant).get().day == dt.date(2026, 1, 15)
    assert rollup_buckets(tenant) == ledger_buckets(tenant)


def test_rollup_of_a_deleted_tenant_is_a_no_op():
    assert usage_rollup_run(tenant_id=987654321) == 0


@pytest.mark.django_db(transaction=True)
def test_rollup_runs_racing_each_other_and_new_records_still_equal_the_ledger():
    tenant = TenantFactory(time_zone="Europe/Berlin")
    keys = [None, ApiKeyFactory.create(tenant=tenant)]
    stop = threading.Event()
    errors = []

    def roll():
        try:
            while not stop.is_set():
                usage_rollup_run(tenant_id=tenant.pk)
        except Exception as exc:  # noqa: BLE001  reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=roll) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        random_rows(tenant, random.Random("race"), 80, keys)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    usage_rollup_run(tenant_id=tenant.pk)

    assert errors == []
    assert rollup_buckets(tenant) == ledger_buckets(tenant)
    assert not UsageRollupPending.objects.for_tenant(tenant).exists()


def test_the_workers_upkeep_rolls_up_rows_whose_message_was_lost():
    from config.runtime.upkeep import upkeep_run_all_tenants

    tenant = TenantFactory()
    record_at(tenant, utc(2026, 4, 2, 20))  # written, but no rollup message ever ran

    done = upkeep_run_all_tenants()

    assert done["usage_rows_rolled_up"] == 1
    assert not UsageRollupPending.objects.for_tenant(tenant).exists()
    assert rollup_buckets(tenant) == ledger_buckets(tenant)
