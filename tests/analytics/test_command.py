"""manage.py usage_rollup: rebuild any range, or take what is pending."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from analytics.models import UsageDaily, UsageRollupPending
from tests.analytics.factories import failure_at, record_at, utc
from tests.analytics.test_rollups import ledger_buckets, rollup_buckets
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_usage_rollup_without_a_range_takes_every_pending_row():
    tenants = [TenantFactory(), TenantFactory(time_zone="America/Los_Angeles")]
    for tenant in tenants:
        record_at(tenant, utc(2026, 3, 1, 3))
        failure_at(tenant, utc(2026, 3, 2, 3))

    call_command("usage_rollup")

    assert not UsageRollupPending.objects.for_tenant(tenants[0]).exists()
    for tenant in tenants:
        assert rollup_buckets(tenant) == ledger_buckets(tenant)


def test_usage_rollup_rebuilds_a_range_for_one_tenant():
    mine, theirs = TenantFactory(slug="mine", time_zone="Europe/Berlin"), TenantFactory(slug="theirs")
    for tenant in (mine, theirs):
        record_at(tenant, utc(2026, 3, 1, 23, 30))
        record_at(tenant, utc(2026, 3, 5, 12))
    call_command("usage_rollup")
    UsageDaily.objects.for_tenant(mine).filter(day=dt.date(2026, 3, 2)).update(characters=1)  # Damaged.
    UsageDaily.objects.for_tenant(theirs).update(characters=2)

    call_command("usage_rollup", "--from", "2026-03-01", "--to", "2026-03-03", "--tenant", "mine")

    assert rollup_buckets(mine) == ledger_buckets(mine)
    assert set(UsageDaily.objects.for_tenant(theirs).values_list("characters", flat=True)) == {2}


@pytest.mark.parametrize("args,message", [
    (["--from", "2026-03-01"], "Give both --from and --to"),
    (["--from", "2026-03-05", "--to", "2026-03-01"], "must not be after"),
    (["--from", "March", "--to", "2026-03-01"], "is not a date"),
    (["--from", "2026-03-01", "--to", "2026-03-02", "--tenant", "nobody"], "No tenant"),
])
def test_usage_rollup_refuses_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("usage_rollup", *args)
