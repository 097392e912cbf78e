import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tenants.models import AuditEvent, Membership, Tenant

pytestmark = pytest.mark.django_db


def _createtenant(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("createtenant", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_createtenant_prints_a_working_key_alone_on_the_last_line():
    lines = _createtenant("acme", "--name", "Acme Inc", "--plan", "pro")

    response = APIClient().get("/api/v1/tenant", HTTP_X_API_KEY=lines[-1])

    assert response.status_code == 200
    assert response.json()["name"] == "Acme Inc"
    assert response.json()["plan"]["slug"] == "pro"
    assert " " not in lines[-1]


def test_createtenant_with_owner_creates_an_owner_who_can_sign_in():
    lines = _createtenant("acme", "--owner", "Boss@Acme.test")
    password = next(line.split(": ", 1)[1] for line in lines if line.startswith("Owner password"))

    membership = Membership.objects.for_tenant(Tenant.objects.get(slug="acme")).get()

    assert membership.role == "owner"
    assert membership.user.email == "boss@acme.test"
    assert membership.user.check_password(password)


def test_createtenant_uses_the_default_plan_and_audits():
    _createtenant("acme")

    tenant = Tenant.objects.get(slug="acme")

    assert tenant.plan.slug == "starter"
    assert set(AuditEvent.objects.for_tenant(tenant).values_list("action", flat=True)) == {
        "tenant.created", "api_key.created",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme", "--plan", "platinum"], "Unknown plan"),
        (["acme", "--time-zone", "Mars/Olympus"], "time_zone"),
        (["Not A Slug!"], "slug"),
    ],
)
def test_createtenant_rejects_bad_input_without_creating_anything(args, message):
    with pytest.raises(CommandError, match=message):
        _createtenant(*args)

    assert not Tenant.objects.exists()


def test_createtenant_refuses_a_taken_slug():
    _createtenant("acme")

    with pytest.raises(CommandError, match="already exists"):
        _createtenant("acme")
