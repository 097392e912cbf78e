import secrets

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tenants.errors import ApplicationError
from tenants.models import Membership, Plan, Tenant
from tenants.services import api_key_create, membership_create, tenant_create, user_get_or_create


class Command(BaseCommand):
    help = "Create a tenant (and its owner) and print a new API key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", help="Display name (default: from the slug).")
        parser.add_argument("--plan", help="Plan slug (default: PARLA_DEFAULT_PLAN).")
        parser.add_argument("--owner", metavar="EMAIL", help="Owner's e-mail; created if new.")
        parser.add_argument("--time-zone", default="UTC")

    def handle(self, *args, slug: str, name: str | None, plan: str | None, owner: str | None,
               time_zone: str, **options):
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with slug {slug!r} already exists.")
        plan_obj = None
        if plan:
            plan_obj = Plan.objects.filter(slug=plan).first()
            if plan_obj is None:
                known = ", ".join(Plan.objects.values_list("slug", flat=True))
                raise CommandError(f"Unknown plan {plan!r}. Plans: {known}.")
        password = None
        try:
            with transaction.atomic():
                tenant = tenant_create(
                    name=name or slug.replace("-", " ").title(), slug=slug, plan=plan_obj,
                    time_zone=time_zone,
                )
                if owner:
                    password = secrets.token_urlsafe(12)
                    user, created = user_get_or_create(email=owner, password=password)
                    if not created:
                        password = None
                    membership_create(tenant=tenant, actor=None, user=user, role=Membership.Role.OWNER)
                created_key = api_key_create(tenant=tenant, actor=None, name="default")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        except Exception as exc:
            if hasattr(exc, "message_dict"):
                raise CommandError(f"Invalid tenant: {exc.message_dict}") from exc
            raise

        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}) on plan {tenant.plan.slug}.")
        if owner:
            self.stdout.write(f"Owner: {owner}")
            if password:
                self.stdout.write(f"Owner password (shown once): {password}")
        self.stdout.write("API key (shown once; store it now):")
        self.stdout.write(created_key.plaintext)
