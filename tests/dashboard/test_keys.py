"""API keys in a real browser: the secret is shown once, revoking refuses the key."""

import pytest
import requests
from playwright.sync_api import expect

from tenants.models import ApiKey
from tests.tenants.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_a_key_then_revoke_it(page, sign_in, live_server):
    owner = MembershipFactory(role="owner")
    sign_in(page, owner.user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto("/app/keys/")

    page.get_by_label("Name").fill("ci-pipeline")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    works = requests.get(f"{live_server.url}/api/v1/tenant", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    page.goto("/app/keys/")
    shown_again = secret in page.content()
    page.get_by_role("button", name="Revoke ci-pipeline").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(page.locator(".messages")).to_contain_text("is revoked")
    refused = requests.get(f"{live_server.url}/api/v1/tenant", headers={"Authorization": f"Bearer {secret}"},
                           timeout=30)

    assert secret.startswith("prl_") and copied == secret
    assert works.status_code == 200
    assert not shown_again
    assert refused.status_code == 401
    assert ApiKey.objects.for_tenant(owner.tenant).get().revoked_at is not None
    expect(page.locator("#active-keys")).to_have_count(0)
    assert page.js_errors == []


def test_cancelling_the_revoke_dialog_keeps_the_key(page, sign_in):
    owner = MembershipFactory(role="owner")
    sign_in(page, owner.user)
    page.goto("/app/keys/")
    page.get_by_label("Name").fill("keep-me")
    page.get_by_role("button", name="Create key").click()

    page.get_by_role("button", name="Revoke keep-me").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    expect(page.get_by_role("dialog")).to_be_hidden()
    assert ApiKey.objects.for_tenant(owner.tenant).get().revoked_at is None
