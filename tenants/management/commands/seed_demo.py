import json
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants.models import Membership, Tenant
from tenants.services import api_key_create, membership_create, tenant_create, user_get_or_create

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@parla.local"


class Command(BaseCommand):
    help = (
        "Create the demo tenant, its owner (also an admin user) and a demo key, once. The "
        "plaintext credentials are kept in var/demo-credentials.json (mode 0600) so later "
        "runs can print them; the database holds only the key's hash."
    )

    def handle(self, *args, **options):
        credentials_file = Path(settings.VAR_DIR) / "demo-credentials.json"
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None or not credentials_file.exists():
            credentials = self._create(tenant)
            credentials_file.parent.mkdir(parents=True, exist_ok=True)
            credentials_file.write_text(json.dumps(credentials, indent=2))
            credentials_file.chmod(0o600)
        credentials = json.loads(credentials_file.read_text())
        self.stdout.write(
            "\n".join(
                [
                    "Demo tenant 'demo' is ready.",
                    f"  Sign in:  {credentials['email']} / {credentials['password']}",
                    f"  API key:  {credentials['api_key']}",
                ]
            )
        )

    @transaction.atomic
    def _create(self, tenant: Tenant | None) -> dict[str, str]:
        if tenant is None:
            tenant = tenant_create(name="Demo Company", slug=DEMO_SLUG)
        password = secrets.token_urlsafe(9)
        user, _ = user_get_or_create(email=DEMO_EMAIL)
        user.set_password(password)
        # The demo owner may also open the operator admin on a laptop install.
        user.is_staff = user.is_superuser = True
        user.save()
        if not Membership.objects.for_tenant(tenant).filter(user=user).exists():
            membership_create(tenant=tenant, actor=None, user=user, role=Membership.Role.OWNER)
        name = f"demo-{secrets.token_hex(3)}"
        created = api_key_create(tenant=tenant, actor=None, name=name)
        return {"email": DEMO_EMAIL, "password": password, "api_key": created.plaintext}
