import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from analytics.rollups import usage_rollup_rebuild, usage_rollup_run_all_tenants
from analytics.selectors import MAX_DATE, MIN_DATE
from tenants.models import Tenant


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = ("Rebuild the daily usage rollups of a range of days (each tenant's own days) from the ledger, "
            "or with no range add every ledger row not yet rolled up.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="First day to rebuild.")
        parser.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="Last day to rebuild (included).")
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant (default: every tenant).")

    def handle(self, *args, start: str | None, end: str | None, tenant: str | None, **options):
        if (start is None) != (end is None):
            raise CommandError("Give both --from and --to, or neither.")
        first, last = (_date(start), _date(end)) if start else (None, None)
        if first and not (MIN_DATE <= first <= last <= MAX_DATE):
            raise CommandError(f"--from must not be after --to, both between {MIN_DATE} and {MAX_DATE}.")
        tenants = Tenant.objects.order_by("pk")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"No tenant with slug {tenant!r}.")
        if first is None:
            added = usage_rollup_run_all_tenants(tenant_ids=None if tenant is None else [t.pk for t in tenants])
            self.stdout.write(f"Rolled up {added} ledger rows.")
            return
        count = 0
        for each in tenants.iterator():
            usage_rollup_rebuild(tenant=each, start=first, end=last)
            count += 1
        self.stdout.write(f"Rebuilt {first} to {last} for {count} tenant(s).")
