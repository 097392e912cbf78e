"""Roles and tenancy in a real browser: members see no manager pages, and nothing of
another tenant is reachable by URL."""

import pytest
from playwright.sync_api import expect

from tenants.models import Membership
from tests.batches.factories import BatchFactory
from tests.synthesis.factories import SynthesisJobFactory
from tests.tenants.factories import ApiKeyFactory, MembershipFactory
from tests.voices.factories import VoiceProfileFactory
from voices.models import VoiceProfile

pytestmark = pytest.mark.django_db(transaction=True)

POST_WITH_TOKEN = """async ([url, token]) => (await fetch(url, {
    method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": token}})).status"""


def test_member_cannot_open_keys_or_settings(page, sign_in):
    member = MembershipFactory(role="member")
    sign_in(page, member.user)
    page.goto("/app/speak/")
    nav = page.get_by_role("navigation", name="Main")

    expect(nav.get_by_role("link", name="Speak")).to_be_visible()
    expect(nav.get_by_role("link", name="API keys")).to_have_count(0)
    expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    for url in ("/app/settings/", "/app/keys/"):
        assert page.goto(url).status == 403
        expect(page.get_by_role("heading", name="You don’t have access to this page")).to_be_visible()


def test_another_tenants_objects_are_not_found_by_url(page, sign_in):
    first_owner = MembershipFactory(role="owner", tenant__name="First Co")
    job = SynthesisJobFactory(tenant=first_owner.tenant, text="First Co's private script.")
    key = ApiKeyFactory.create(tenant=first_owner.tenant, name="first-co-key")
    outsider = MembershipFactory(role="owner", tenant__name="Second Co")
    sign_in(page, outsider.user)

    page.goto("/app/speak/")
    history = page.locator("#history").inner_text()
    page.goto("/app/keys/")
    keys_page = page.content()
    token = page.locator("[name=csrfmiddlewaretoken]").first.input_value()
    forged = {
        url: page.evaluate(POST_WITH_TOKEN, [url, token])
        for url in (f"/app/keys/{key.pk}/revoke", f"/app/settings/members/{first_owner.pk}/remove")
    }
    api_audio = page.request.get(f"/api/v1/jobs/{job.pk}/audio")
    page_audio = page.goto(f"/app/speak/jobs/{job.pk}/audio")

    assert "First Co's private script." not in history
    assert key.prefix not in keys_page
    assert forged == dict.fromkeys(forged, 404)
    assert api_audio.status == 404 and api_audio.json()["code"] == "not_found"
    assert page_audio.status == 404
    expect(page.get_by_role("heading", name="We can’t find that page")).to_be_visible()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert Membership.objects.for_tenant(first_owner.tenant).filter(pk=first_owner.pk).exists()


def test_another_tenants_voices_batches_and_usage_are_not_reachable_by_url(page, sign_in):
    first_owner = MembershipFactory(role="owner", tenant__name="First Co")
    voice = VoiceProfileFactory(tenant=first_owner.tenant, name="First Co narrator")
    batch = BatchFactory(tenant=first_owner.tenant, name="First Co course")
    job = SynthesisJobFactory(tenant=first_owner.tenant, batch=batch, mode="batch", batch_index=0,
                              text="First Co's private line.")
    member = MembershipFactory(tenant=first_owner.tenant, role="member")
    outsider = MembershipFactory(role="owner", tenant__name="Second Co")
    sign_in(page, outsider.user)

    page.goto("/app/voices/")
    voices_page = page.content()
    page.goto("/app/batches/")
    batches_page = page.content()
    page.goto("/app/usage/")
    usage_page = page.content()
    token = page.locator("[name=csrfmiddlewaretoken]").first.input_value()
    gets = {url: page.request.get(url).status for url in (
        f"/app/voices/{voice.pk}/", f"/app/voices/{voice.pk}/preview", f"/app/voices/{voice.pk}/status",
        f"/app/batches/{batch.pk}/", f"/app/batches/{batch.pk}/progress", f"/app/batches/{batch.pk}/export",
        f"/app/batches/{batch.pk}/items/{job.pk}/audio",
    )}
    forged = {url: page.evaluate(POST_WITH_TOKEN, [url, token]) for url in (
        f"/app/voices/{voice.pk}/delete", f"/app/batches/{batch.pk}/cancel", f"/app/batches/{batch.pk}/retry",
        f"/app/settings/members/{member.pk}/role",
    )}

    assert "First Co narrator" not in voices_page
    assert "First Co course" not in batches_page
    assert "First Co" not in usage_page
    assert gets == dict.fromkeys(gets, 404)
    assert forged == dict.fromkeys(forged, 404)
    assert VoiceProfile.objects.for_tenant(first_owner.tenant).filter(pk=voice.pk).exists()
    batch.refresh_from_db()
    member.refresh_from_db()
    assert batch.status != "cancelled" and member.role == "member"


def test_switching_workspace_shows_the_other_tenants_data(page, sign_in):
    first = MembershipFactory(role="owner", tenant__name="First Co")
    second = MembershipFactory(user=first.user, role="member", tenant__name="Second Co")
    SynthesisJobFactory(tenant=second.tenant, text="Second Co's announcement.")
    sign_in(page, first.user)
    page.goto("/app/speak/")

    page.get_by_label("Workspace").select_option(label="Second Co")

    expect(page.locator(".messages")).to_contain_text("You are now working in Second Co.")
    expect(page.locator("#history")).to_contain_text("Second Co's announcement.")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys")).to_have_count(0)
