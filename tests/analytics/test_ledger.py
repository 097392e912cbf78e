"""The ledger is append-only, and each row carries what finance needs from its job."""

import pytest
from django.core.management import call_command

from analytics.models import LedgerAppendOnly, UsageFailure, UsageRecord, UsageRollupPending
from tests.analytics.factories import failure_at, record_at, utc
from tests.batches.factories import BatchFactory
from tests.tenants.factories import ApiKeyFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_usage_record_save_refuses_to_update_an_existing_row(tenant):
    record = record_at(tenant, utc(2026, 5, 1, 12))
    record.characters_billed = 0

    with pytest.raises(LedgerAppendOnly):
        record.save()

    assert UsageRecord.objects.for_tenant(tenant).get().characters_billed == 100


def test_usage_record_delete_is_refused(tenant):
    record = record_at(tenant, utc(2026, 5, 1, 12))

    with pytest.raises(LedgerAppendOnly):
        record.delete()

    assert UsageRecord.objects.for_tenant(tenant).count() == 1


@pytest.mark.parametrize("operation", [
    lambda qs: qs.update(characters_billed=0),
    lambda qs: qs.delete(),
    lambda qs: qs.bulk_update(list(qs), ["characters_billed"]),
    lambda qs: qs.update_or_create(job_id=qs.get().job_id, defaults={"characters_billed": 0}),
])
def test_usage_record_queryset_refuses_updates_and_deletes(tenant, operation):
    record_at(tenant, utc(2026, 5, 1, 12))

    with pytest.raises(LedgerAppendOnly):
        operation(UsageRecord.objects.for_tenant(tenant))

    assert UsageRecord.objects.for_tenant(tenant).get().characters_billed == 100


def test_usage_failure_is_append_only_too(tenant):
    failure = failure_at(tenant, utc(2026, 5, 1, 12))

    with pytest.raises(LedgerAppendOnly):
        failure.save()
    with pytest.raises(LedgerAppendOnly):
        UsageFailure.objects.for_tenant(tenant).delete()

    assert UsageFailure.objects.for_tenant(tenant).count() == 1


def test_usage_record_carries_batch_user_key_and_model_from_its_job(tenant):
    user, api_key, batch = UserFactory(), ApiKeyFactory.create(tenant=tenant), BatchFactory(tenant=tenant)

    record = record_at(tenant, utc(2026, 5, 1, 12), api_key=api_key, created_by=user, batch=batch)

    record = UsageRecord.objects.for_tenant(tenant).get(pk=record.pk)
    assert (record.user_id, record.api_key_id, record.batch_id) == (user.pk, api_key.pk, batch.pk)
    assert record.model_version == "test-model-1"
    assert record.gpu_seconds is None  # This machine's workers run on the CPU.
    assert record.created_at == utc(2026, 5, 1, 12)


def test_usage_record_for_the_same_job_is_written_once(tenant):
    from analytics.services import usage_record_create

    record = record_at(tenant, utc(2026, 5, 1, 12))

    again = usage_record_create(tenant=tenant, job=record.job, characters_billed=100, cached=False,
                                processing_seconds=0.5)

    assert again.pk == record.pk
    assert UsageRecord.objects.for_tenant(tenant).count() == 1
    assert UsageRollupPending.objects.for_tenant(tenant).count() == 1


def test_every_ledger_row_waits_for_the_rollups(tenant):
    record = record_at(tenant, utc(2026, 5, 1, 12))
    failure = failure_at(tenant, utc(2026, 5, 1, 13))

    pending = UsageRollupPending.objects.for_tenant(tenant)

    assert {(row.record_id, row.failure_id) for row in pending} == {(record.pk, None), (None, failure.pk)}


def test_writing_records_schedules_one_delayed_rollup_after_commit(
    tenant, django_capture_on_commit_callbacks, monkeypatch, settings
):
    from django.core.cache import cache

    from analytics.tasks.actors import usage_rollup_run

    settings.PARLA_USAGE_ROLLUP_DELAY_SECONDS = 5
    sent = []
    monkeypatch.setattr(usage_rollup_run, "send_with_options",
                        lambda *, args, delay: sent.append((args, delay)))
    cache.delete(f"analytics:rollup-queued:{tenant.pk}")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record_at(tenant, utc(2026, 5, 1, 12))
        record_at(tenant, utc(2026, 5, 1, 13))
        assert sent == []
    for callback in callbacks:
        callback()

    # One message for the window, due in 5 s: it takes both rows.
    assert sent == [((tenant.pk,), 5000)]


def test_a_negative_delay_leaves_rollups_to_the_upkeep(tenant, django_capture_on_commit_callbacks, monkeypatch,
                                                       settings):
    from analytics.tasks.actors import usage_rollup_run

    settings.PARLA_USAGE_ROLLUP_DELAY_SECONDS = -1
    monkeypatch.setattr(usage_rollup_run, "send_with_options", lambda **kwargs: pytest.fail("sent"))

    with django_capture_on_commit_callbacks(execute=True):
        record_at(tenant, utc(2026, 5, 1, 12))

    assert UsageRollupPending.objects.for_tenant(tenant).count() == 1


def test_migrations_match_the_models():
    call_command("makemigrations", "analytics", "synthesis", "tenants", "--check", "--dry-run", verbosity=0)


def test_another_tenants_records_are_not_reachable_through_for_tenant():
    mine, theirs = TenantFactory(), TenantFactory()
    record_at(theirs, utc(2026, 5, 1, 12))

    assert not UsageRecord.objects.for_tenant(mine).exists()
