"""The Voices pages in a real browser: recordings added by drag and drop or with the file
input are checked one by one and their quality reports shown; a file that is not audio shows
its message and is not sent; the voice is made from the accepted recordings, edited and
deleted; a catalog voice's preview is made by a real worker and played in the page."""

import base64

import pytest
from playwright.sync_api import expect

from synthesis.models import SynthesisJob
from tests.tenants.factories import MembershipFactory
from tests.voices.conftest import speech_wav  # noqa: F401  (a real recording of speech, made by Piper)
from tests.voices.factories import VoiceProfileFactory
from voices.models import VoiceProfile, VoiceReference

pytestmark = pytest.mark.django_db(transaction=True)

HTML_PAGE = b"<!doctype html>\n<html><head><title>Download</title></head><body>Not audio.</body></html>\n"

# Drops files on the zone as a browser does when they are dragged from the desktop.
DROP = """([selector, files]) => {
    const transfer = new DataTransfer();
    for (const [name, type, data] of files) {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], name, {type}));
    }
    const zone = document.querySelector(selector);
    zone.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def _drop(page, *files: tuple[str, str, bytes]) -> None:
    encoded = [[name, kind, base64.b64encode(data).decode()] for name, kind, data in files]
    page.evaluate(DROP, ["[data-dropzone]", encoded])


def test_upload_a_recording_see_its_quality_report_and_make_the_voice(page, sign_in, speech_wav):
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)
    page.goto("/app/voices/")
    expect(page.locator("#own-voices-empty")).to_contain_text("No voices of your own yet")
    page.get_by_role("link", name="New voice").click()

    page.get_by_label("Name").fill("Course narrator")
    page.get_by_label("Description").fill("Reads our course material.")
    page.locator("#id_references").set_input_files(
        files=[{"name": "narrator.wav", "mimeType": "audio/wav", "buffer": speech_wav}])
    item = page.locator(".upload-item").filter(has_text="narrator.wav")
    expect(item.locator("[data-upload-badge]")).to_have_text("Accepted", timeout=60_000)
    expect(item.locator(".quality")).to_contain_text("Signal to noise")
    expect(item.locator(".quality")).to_contain_text("LUFS")
    speech_row = item.locator(".quality-row").filter(has_text="Speech")
    expect(speech_row).to_contain_text(" s")
    shown_seconds = float(speech_row.locator("strong").inner_text().split(" ")[0])
    page.get_by_role("button", name="Create voice").click()

    expect(page.locator(".messages")).to_contain_text("is being made from your recordings")
    profile = VoiceProfile.objects.for_tenant(membership.tenant).get()
    reference = VoiceReference.objects.for_tenant(membership.tenant).get()
    assert page.url.endswith(f"/app/voices/{profile.pk}/")
    assert (profile.name, profile.kind, profile.status) == ("Course narrator", "matched", "enrolling")
    assert abs(reference.speech_seconds - shown_seconds) < 0.06
    expect(page.locator(".reference-item")).to_have_count(1)
    expect(page.locator(".reference-item .quality")).to_contain_text("Signal to noise")
    expect(page.locator("[data-voice-status] [role=progressbar]")).to_have_attribute("aria-valuenow", "0")
    page.get_by_role("link", name="Voices", exact=True).first.click()
    expect(page.locator("#own-voice-table")).to_contain_text("Course narrator")
    expect(page.locator("#own-voice-table")).to_contain_text("Enrolling")
    assert page.js_errors == []


def test_a_dropped_file_that_is_not_audio_shows_its_message_and_is_not_sent(page, sign_in, speech_wav):
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)
    page.goto("/app/voices/new")
    page.get_by_label("Name").fill("Narrator")

    _drop(page, ("download.wav", "audio/wav", HTML_PAGE), ("take-1.wav", "audio/wav", speech_wav))

    rejected = page.locator(".upload-item").filter(has_text="download.wav")
    accepted = page.locator(".upload-item").filter(has_text="take-1.wav")
    expect(rejected.locator("[data-upload-badge]")).to_have_text("Rejected", timeout=60_000)
    expect(rejected).to_contain_text("This looks like an HTML page, not audio.")
    expect(rejected).to_contain_text("Nothing of it was stored.")
    expect(accepted.locator("[data-upload-badge]")).to_have_text("Accepted", timeout=60_000)
    assert page.evaluate("Array.from(document.getElementById('id_references').files).map((f) => f.name)") == [
        "take-1.wav"]
    assert not VoiceProfile.objects.for_tenant(membership.tenant).exists()
    page.get_by_role("button", name="Create voice").click()

    expect(page.locator(".messages")).to_contain_text("is being made from your recordings")
    assert VoiceReference.objects.for_tenant(membership.tenant).count() == 1
    assert page.js_errors == []


def test_a_file_removed_from_the_list_is_not_sent(page, sign_in, speech_wav):
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)
    page.goto("/app/voices/new")

    _drop(page, ("first.wav", "audio/wav", speech_wav), ("second.wav", "audio/wav", speech_wav))
    page.get_by_role("button", name="Remove first.wav").click()

    expect(page.locator(".upload-item")).to_have_count(1)
    assert page.evaluate("Array.from(document.getElementById('id_references').files).map((f) => f.name)") == [
        "second.wav"]
    assert page.js_errors == []


def test_voice_details_are_edited_and_the_voice_deleted_after_confirming(page, sign_in):
    membership = MembershipFactory(role="member")
    profile = VoiceProfileFactory(tenant=membership.tenant, name="Old name")
    sign_in(page, membership.user)
    page.goto(f"/app/voices/{profile.pk}/")

    page.get_by_label("Name").fill("Warm narrator")
    page.get_by_label("Gender").fill("female")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".messages")).to_contain_text("“Warm narrator” is saved.")
    page.get_by_role("button", name="Delete voice").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    still_there = VoiceProfile.objects.for_tenant(membership.tenant).exists()
    page.get_by_role("button", name="Delete voice").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete voice").click()

    expect(page.locator(".messages")).to_contain_text("“Warm narrator” and its recordings are deleted.")
    assert still_there
    assert not VoiceProfile.objects.for_tenant(membership.tenant).exists()
    assert page.js_errors == []


def test_voices_page_fits_a_phone_screen(page, sign_in):
    membership = MembershipFactory(role="member")
    VoiceProfileFactory(tenant=membership.tenant, name="Brand narrator")
    sign_in(page, membership.user)
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto("/app/voices/")

    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    expect(page.locator("#own-voice-table")).to_contain_text("Brand narrator")
    assert page.js_errors == []


def test_preview_a_catalog_voice_in_the_page(page, sign_in, cpu_worker):
    membership = MembershipFactory(role="member")
    sign_in(page, membership.user)
    page.goto("/app/voices/")

    page.get_by_role("link", name="Preview en_US-joe-medium").click()
    page.wait_for_function("document.getElementById('preview-audio').currentTime > 0", timeout=120_000)

    expect(page.locator("#preview-status")).to_have_text("Playing · en_US-joe-medium")
    job = SynthesisJob.objects.for_tenant(membership.tenant).get()
    assert (job.mode, job.status, job.voice_id, job.characters) == ("preview", "succeeded", "piper:en_US-joe-medium", 0)
    assert page.js_errors == []
