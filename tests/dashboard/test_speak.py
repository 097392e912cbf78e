"""The Speak page in a real browser, with a real worker process making the audio."""

import pytest
import requests
from playwright.sync_api import expect

from analytics.models import UsageRecord
from synthesis.models import SynthesisJob
from tests.tenants.factories import ApiKeyFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

AUDIO = "document.getElementById('speak-audio')"


def test_generate_plays_the_audio_in_the_page(page, sign_in, cpu_worker):
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)
    page.goto("/app/speak/")

    page.get_by_label("Text to speak").fill("Welcome to Parla. This sentence is spoken by the dashboard.")
    expect(page.locator("#char-count")).to_contain_text("59 characters")
    page.get_by_label("Format").select_option("mp3")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(f"{AUDIO}.currentTime > 0", timeout=120_000)
    expect(page.locator("#player")).to_have_attribute("data-state", "ready", timeout=120_000)

    job = SynthesisJob.objects.for_tenant(membership.tenant).get()
    assert (job.mode, job.status, job.format) == ("stream", "succeeded", "mp3")
    assert page.evaluate(f"{AUDIO}.currentTime") > 0
    assert page.evaluate(f"{AUDIO}.duration") > 1
    assert UsageRecord.objects.for_tenant(membership.tenant).get().job_id == job.pk
    download = page.locator("#player-download")
    expect(download).to_have_attribute("href", f"/app/speak/jobs/{job.pk}/audio?download=1")
    fetched = page.request.get(download.get_attribute("href"))
    assert fetched.status == 200 and fetched.headers["content-type"] == "audio/mpeg"
    expect(page.locator("#history-list .history-item")).to_have_count(1)
    assert page.js_errors == []


def test_history_replays_audio_made_through_the_api(page, sign_in, live_server, cpu_worker):
    membership = MembershipFactory(role="member")
    key = ApiKeyFactory.create_with_plaintext(tenant=membership.tenant)
    made = requests.post(f"{live_server.url}/api/v1/speech", json={"text": "Made by the API.", "format": "ogg"},
                         headers={"Authorization": f"Bearer {key.plaintext}"}, timeout=120)
    assert made.status_code == 200, made.text
    sign_in(page, membership.user)
    page.goto("/app/speak/")

    page.locator("#history-list").get_by_role("button", name="Play").click()
    page.wait_for_function(f"{AUDIO}.currentTime > 0", timeout=60_000)

    expect(page.locator("#player-status")).to_contain_text("Replaying · Made by the API.")
    expect(page.locator("#player-download")).to_have_attribute(
        "href", f"/app/speak/jobs/{made.headers['X-Parla-Job-Id']}/audio?download=1"
    )
    assert page.js_errors == []


def test_generate_explains_an_exhausted_quota(page, sign_in):
    membership = MembershipFactory(role="member", tenant__plan__monthly_characters=10)
    sign_in(page, membership.user)
    page.goto("/app/speak/")

    page.get_by_label("Text to speak").fill("This is longer than ten characters.")
    page.get_by_role("button", name="Generate").click()

    expect(page.locator("#quota-warning")).to_contain_text("but 10 are left this month")
    assert not SynthesisJob.objects.for_tenant(membership.tenant).exists()
