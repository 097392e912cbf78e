"""The Voices pages without a browser: who may use them, what they list, the forms' messages,
uploads that are refused without storing anything, previews, and other tenants' ids (404)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from synthesis.models import SynthesisJob
from tenants.models import AuditEvent, Membership
from tests.helpers import signed_in_client
from tests.synthesis.conftest import unlicensed_piper_voice  # noqa: F401  (an operator voice without a licence)
from tests.synthesis.factories import SynthesisJobFactory
from tests.tenants.factories import MembershipFactory, TenantFactory
from tests.voices.conftest import speech_wav  # noqa: F401  (a real recording of speech, made by Piper)
from tests.voices.factories import VoiceProfileFactory, VoiceReferenceFactory
from voices.models import VoiceProfile, VoiceReference
from voices.services import Upload, voice_profile_create

pytestmark = pytest.mark.django_db

HTML_PAGE = b"<!doctype html>\n<html><head><title>Download</title></head><body>Not audio.</body></html>\n"


@pytest.fixture
def member():
    return MembershipFactory(role=Membership.Role.MEMBER)


@pytest.fixture
def member_client(member):
    return signed_in_client(member)


def _wav(data: bytes, name: str = "narrator.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="audio/wav")


def _stored_files(tenant) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "tenants" / str(tenant.pk)
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def _row(page: str, marker: str) -> str:
    """The table row of the page that holds `marker`."""
    at = page.index(marker)
    return page[page.rindex("<tr", 0, at):page.index("</tr>", at)]


def _matched_voice(tenant, speech: bytes, *, name: str = "Narrator") -> VoiceProfile:
    """A voice made from one real recording through the service, as the page would."""
    return voice_profile_create(tenant=tenant, name=name, uploads=[Upload(data=speech, filename="a.wav")])


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/app/voices/", "/app/voices/new"])
def test_voice_pages_send_visitors_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("role", [Membership.Role.MEMBER, Membership.Role.ADMIN, Membership.Role.OWNER])
def test_voice_pages_are_open_to_every_role(role):
    membership = MembershipFactory(role=role)
    client = signed_in_client(membership)

    index = client.get("/app/voices/")
    create = client.get("/app/voices/new")

    assert index.status_code == 200 and create.status_code == 200
    nav = index.content.decode().split('aria-label="Main"')[1].split("</nav>")[0]
    assert 'href="/app/voices/" class="nav-link" aria-current="page"' in nav


def test_voice_forms_require_csrf(member, speech_wav):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    profile = VoiceProfileFactory(tenant=member.tenant, name="Keep me")

    created = client.post("/app/voices/new", {"name": "No token", "language": "en-US",
                                              "references": [_wav(speech_wav)]})
    checked = client.post("/app/voices/recordings/check", {"file": _wav(speech_wav)})
    deleted = client.post(f"/app/voices/{profile.pk}/delete")

    assert (created.status_code, checked.status_code, deleted.status_code) == (403, 403, 403)
    assert list(VoiceProfile.objects.for_tenant(member.tenant).values_list("name", flat=True)) == ["Keep me"]
    assert _stored_files(member.tenant) == []


# --- The list ---------------------------------------------------------------------------------


def test_voices_index_lists_catalog_and_own_voices_with_kind_status_and_licence(member, member_client):
    VoiceProfileFactory(tenant=member.tenant, name="Brand narrator", language="en-GB")
    VoiceProfileFactory(tenant=member.tenant, name="Learning voice", kind="matched", engine="kokoro",
                        base_voice_id="", status="enrolling", enrollment={"stage": "searching", "progress": 0.42})
    VoiceProfileFactory(tenant=member.tenant, name="Broken voice", kind="matched", engine="kokoro",
                        base_voice_id="", status="failed", error="No speech in the recordings.")
    VoiceProfileFactory(tenant=TenantFactory(), name="Someone else's voice")

    page = member_client.get("/app/voices/").content.decode()

    own = page.split('id="own-voice-table"')[1].split("</table>")[0]
    catalog = page.split('id="catalog-voice-table"')[1].split("</table>")[0]
    learning = _row(own, "Learning voice")
    assert "Brand narrator" in own and "en-GB" in own and "Catalog voice preset" in own
    assert "Matched approximation" in learning
    assert "Enrolling · <span data-status-percent>42</span> %" in learning
    assert 'role="progressbar"' in learning and 'aria-valuenow="42"' in learning
    assert 'title="No speech in the recordings."' in _row(own, "Broken voice")
    assert "piper:en_US-joe-medium" in catalog and "CC0-1.0" in catalog and "kokoro:jf_alpha" in catalog
    assert "Someone else's voice" not in page


def test_voices_index_marks_non_commercial_licences(member_client, unlicensed_piper_voice):
    page = member_client.get("/app/voices/").content.decode()

    row = _row(page, f'data-voice-id="{unlicensed_piper_voice}"')
    joe = _row(page, 'data-voice-id="piper:en_US-joe-medium"')
    assert "Non-commercial" in row and "unknown (no MODEL_CARD)" in row
    assert "Non-commercial" not in joe


def test_voices_index_has_an_empty_state_without_own_voices(member_client):
    page = member_client.get("/app/voices/").content.decode()

    assert "No voices of your own yet" in page
    assert 'href="/app/voices/new"' in page
    assert 'id="own-voice-table"' not in page


# --- Making a voice ---------------------------------------------------------------------------


def test_voice_create_makes_a_voice_from_a_recording(member, member_client, speech_wav):
    response = member_client.post("/app/voices/new", {
        "name": "Course narrator", "language": "en-US", "description": "Reads our courses.",
        "references": [_wav(speech_wav)],
    }, follow=True)

    profile = VoiceProfile.objects.for_tenant(member.tenant).get()
    reference = VoiceReference.objects.for_tenant(member.tenant).get()
    page = response.content.decode()
    assert response.redirect_chain == [(f"/app/voices/{profile.pk}/", 302)]
    assert (profile.name, profile.kind, profile.status, profile.created_by) == (
        "Course narrator", "matched", "enrolling", member.user)
    assert reference.profile == profile and reference.speech_seconds > 3
    assert "is being made from your recordings" in page
    assert "Recording 1" in page and "Signal to noise" in page
    assert f"{reference.quality['speech_seconds']:.1f} s" in page
    assert AuditEvent.objects.for_tenant(member.tenant).filter(action="voice.created").exists()


def test_voice_create_refuses_an_html_file_and_stores_nothing(member, member_client, speech_wav):
    response = member_client.post("/app/voices/new", {
        "name": "Course narrator", "language": "en-US",
        "references": [_wav(speech_wav, "good.wav"), _wav(HTML_PAGE, "voice.wav")],
    })

    page = response.content.decode()
    assert response.status_code == 200
    assert "voice.wav: This looks like an HTML page, not audio." in page
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()
    assert not VoiceReference.objects.for_tenant(member.tenant).exists()
    assert _stored_files(member.tenant) == []


@pytest.mark.parametrize(
    ("data", "messages"),
    [
        ({}, ["Give the voice a name.", "Add at least one recording of the voice."]),
        ({"name": "   ", "language": "english please"},
         ["Give the voice a name.", "Write the language as a code such as en-US, de or pt-BR."]),
    ],
)
def test_voice_create_explains_missing_and_invalid_fields(member, member_client, data, messages):
    response = member_client.post("/app/voices/new", data)

    page = response.content.decode()
    assert all(message in page for message in messages)
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()


def test_voice_create_explains_a_recording_that_is_too_short(member, member_client):
    from tests.voices.hostile_files import speech_like, wav_bytes

    response = member_client.post("/app/voices/new", {
        "name": "Short", "language": "en-US", "references": [_wav(wav_bytes(speech_like(1.5)), "short.wav")],
    })

    assert "short.wav: The recording holds" in response.content.decode()
    assert "at least 3 s is needed" in response.content.decode()
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()


def test_voice_create_refuses_beyond_the_plan_with_a_clear_message(member, member_client, speech_wav):
    member.tenant.plan.cloned_voices = 0
    member.tenant.plan.save()

    form_page = member_client.get("/app/voices/new").content.decode()
    response = member_client.post("/app/voices/new", {
        "name": "One too many", "language": "en-US", "references": [_wav(speech_wav)],
    })

    assert "allows 0 voices made from recordings" in form_page
    assert f"The {member.tenant.plan.name} plan allows 0 cloned or matched voices." in response.content.decode()
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()
    assert _stored_files(member.tenant) == []


def test_voice_create_refuses_a_name_already_used(member, member_client, speech_wav):
    VoiceProfileFactory(tenant=member.tenant, name="Narrator")

    response = member_client.post("/app/voices/new", {
        "name": "Narrator", "language": "en-US", "references": [_wav(speech_wav)],
    })

    assert "A voice with this name already exists." in response.content.decode()
    assert VoiceProfile.objects.for_tenant(member.tenant).count() == 1


def test_voice_create_refuses_a_file_over_the_plans_upload_limit(member, member_client, speech_wav):
    member.tenant.plan.upload_bytes = 100_000
    member.tenant.plan.save()

    response = member_client.post("/app/voices/new", {
        "name": "Big", "language": "en-US", "references": [_wav(speech_wav, "long.wav")],
    })

    assert "long.wav: The file is larger than this plan&#x27;s limit of 0.1 MB." in response.content.decode()
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()


# --- Checking one recording -------------------------------------------------------------------


def test_reference_check_reports_quality_in_numbers_and_words_without_storing(member, member_client, speech_wav):
    response = member_client.post("/app/voices/recordings/check", {"file": _wav(speech_wav)})

    body = response.json()
    assert response.status_code == 200 and body["ok"] is True
    assert body["report"]["speech_seconds"] > 3 and body["report"]["snr_db"] is not None
    assert "Signal to noise" in body["html"] and " dB" in body["html"] and "LUFS" in body["html"]
    assert f"{body['report']['speech_seconds']:.1f} s" in body["html"]
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()
    assert _stored_files(member.tenant) == []


def test_reference_check_explains_a_file_that_is_not_audio(member, member_client):
    response = member_client.post("/app/voices/recordings/check", {"file": _wav(HTML_PAGE, "voice.wav")})

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_audio"
    assert response.json()["message"] == "This looks like an HTML page, not audio."
    assert _stored_files(member.tenant) == []


def test_reference_check_needs_a_file(member_client):
    response = member_client.post("/app/voices/recordings/check", {})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


# --- One voice --------------------------------------------------------------------------------


def test_voice_detail_saves_name_description_and_labels(member, member_client):
    profile = VoiceProfileFactory(tenant=member.tenant, name="Old name")

    response = member_client.post(f"/app/voices/{profile.pk}/", {
        "edit-name": "New name", "edit-description": "Warm and calm.", "edit-language": "en-GB",
        "edit-gender": "female", "edit-age": "adult",
    }, follow=True)

    profile.refresh_from_db()
    assert (profile.name, profile.description, profile.language, profile.gender, profile.age) == (
        "New name", "Warm and calm.", "en-GB", "female", "adult")
    assert "“New name” is saved." in response.content.decode()
    event = AuditEvent.objects.for_tenant(member.tenant).get(action="voice.updated")
    assert event.extra["fields"] == ["age", "description", "gender", "language", "name"]


def test_matched_voice_detail_shows_the_similarity_measured_on_sentences_the_search_did_not_tune_on(
        member, member_client):
    validated = VoiceProfileFactory(tenant=member.tenant, kind="matched", engine="kokoro", base_voice_id="",
                                    status="ready", enrollment={"similarity": 0.74, "baseline_similarity": 0.61,
                                                                "validation_similarity": 0.69, "equalizer_db": 6.0})
    older = VoiceProfileFactory(tenant=member.tenant, kind="matched", engine="kokoro", base_voice_id="",
                                status="ready", enrollment={"similarity": 0.66, "baseline_similarity": 0.61})

    page = member_client.get(f"/app/voices/{validated.pk}/").content.decode()
    before = member_client.get(f"/app/voices/{older.pk}/").content.decode()

    assert "on sentences the search did not tune on: <strong>0.69</strong>" in page
    assert "tone correction of up to 6 dB" in page and "0.74" not in page
    assert "Measured similarity to your recordings: <strong>0.66</strong>" in before  # enrolled before validation


def test_voice_detail_explains_a_name_already_used(member, member_client):
    VoiceProfileFactory(tenant=member.tenant, name="Taken")
    profile = VoiceProfileFactory(tenant=member.tenant, name="Mine")

    response = member_client.post(f"/app/voices/{profile.pk}/", {"edit-name": "Taken", "edit-language": "en-US"})

    assert "A voice with this name already exists." in response.content.decode()
    profile.refresh_from_db()
    assert profile.name == "Mine"


def test_voice_delete_removes_the_voice_and_its_recordings(member, member_client, speech_wav):
    profile = _matched_voice(member.tenant, speech_wav)
    assert _stored_files(member.tenant)

    response = member_client.post(f"/app/voices/{profile.pk}/delete", follow=True)

    assert "“Narrator” and its recordings are deleted." in response.content.decode()
    assert not VoiceProfile.objects.for_tenant(member.tenant).exists()
    assert _stored_files(member.tenant) == []


def test_recordings_can_be_added_and_removed_but_not_the_last(member, member_client, speech_wav):
    profile = _matched_voice(member.tenant, speech_wav)

    added = member_client.post(f"/app/voices/{profile.pk}/recordings",
                               {"references": [_wav(speech_wav, "second.wav")]}, follow=True)
    first, second = VoiceReference.objects.for_tenant(member.tenant).order_by("pk")
    removed = member_client.post(f"/app/voices/{profile.pk}/recordings/{first.pk}/delete", follow=True)
    last = member_client.post(f"/app/voices/{profile.pk}/recordings/{second.pk}/delete", follow=True)

    assert "1 recording was added" in added.content.decode()
    assert "The recording is removed" in removed.content.decode()
    assert "A voice needs at least one recording; delete the voice instead." in last.content.decode()
    assert list(VoiceReference.objects.for_tenant(member.tenant).values_list("pk", flat=True)) == [second.pk]


def test_adding_a_rejected_recording_shows_its_message_and_stores_nothing(member, member_client, speech_wav):
    profile = _matched_voice(member.tenant, speech_wav)
    before = _stored_files(member.tenant)

    response = member_client.post(f"/app/voices/{profile.pk}/recordings", {"references": [_wav(HTML_PAGE, "x.mp3")]})

    assert "x.mp3: This looks like an HTML page, not audio." in response.content.decode()
    assert VoiceReference.objects.for_tenant(member.tenant).count() == 1
    assert _stored_files(member.tenant) == before


def test_voice_status_reports_enrollment_progress(member, member_client):
    profile = VoiceProfileFactory(tenant=member.tenant, kind="matched", engine="kokoro", base_voice_id="",
                                  status="enrolling", enrollment={"stage": "searching", "progress": 0.5})

    body = member_client.get(f"/app/voices/{profile.pk}/status").json()

    assert body == {"id": profile.pk, "status": "enrolling", "status_label": "Enrolling", "progress": 50,
                    "stage": "searching", "error": ""}


# --- Previews ---------------------------------------------------------------------------------


def test_voice_preview_serves_the_sample_already_made(member, member_client):
    profile = VoiceProfileFactory(tenant=member.tenant)
    job = SynthesisJobFactory(tenant=member.tenant, mode=SynthesisJob.Mode.PREVIEW, voice_profile=profile,
                              audio_options={"format": "mp3"}, format="mp3", content_type="audio/mpeg")

    response = member_client.get(f"/app/voices/{profile.pk}/preview")

    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg" and response["X-Parla-Job-Id"] == str(job.pk)


def test_catalog_voice_preview_serves_the_sample_already_made(member, member_client):
    job = SynthesisJobFactory(tenant=member.tenant, mode=SynthesisJob.Mode.PREVIEW, audio_options={"format": "mp3"},
                              format="mp3", content_type="audio/mpeg")

    response = member_client.get("/app/voices/catalog/piper:en_US-joe-medium/preview")

    assert response.status_code == 200
    assert response["X-Parla-Job-Id"] == str(job.pk)


def test_voice_preview_queues_a_sample_when_none_is_made(member, member_client):
    profile = VoiceProfileFactory(tenant=member.tenant)

    response = member_client.get(f"/app/voices/{profile.pk}/preview")

    job = SynthesisJob.objects.for_tenant(member.tenant).get()
    assert response.status_code == 202 and response.json()["job"] == job.pk
    assert (job.mode, job.voice_profile, job.characters, job.created_by) == ("preview", profile, 0, member.user)


def test_voice_preview_explains_a_voice_that_is_not_ready(member, member_client):
    profile = VoiceProfileFactory(tenant=member.tenant, kind="matched", engine="kokoro", base_voice_id="",
                                  status="enrolling")

    response = member_client.get(f"/app/voices/{profile.pk}/preview")

    assert response.status_code == 409
    assert response.json()["code"] == "voice_not_ready"
    assert not SynthesisJob.objects.for_tenant(member.tenant).exists()


def test_preview_refuses_an_unknown_format(member, member_client):
    response = member_client.get("/app/voices/catalog/piper:en_US-joe-medium/preview?format=flac")

    assert response.status_code == 400
    assert response.json()["message"] == "Previews come as mp3, wav, opus."


# --- Other tenants ----------------------------------------------------------------------------


def test_another_tenants_voice_is_not_found_by_url(member, member_client):
    theirs = VoiceProfileFactory(tenant=TenantFactory(), name="Their voice")
    reference = VoiceReferenceFactory(profile__tenant=theirs.tenant)
    other_profile = reference.profile

    gets = {url: member_client.get(url).status_code for url in (
        f"/app/voices/{theirs.pk}/", f"/app/voices/{theirs.pk}/status", f"/app/voices/{theirs.pk}/preview",
        f"/app/voices/{other_profile.pk}/",
    )}
    posts = {url: member_client.post(url, data).status_code for url, data in (
        (f"/app/voices/{theirs.pk}/", {"edit-name": "Stolen", "edit-language": "en-US"}),
        (f"/app/voices/{theirs.pk}/delete", {}),
        (f"/app/voices/{other_profile.pk}/recordings", {}),
        (f"/app/voices/{other_profile.pk}/recordings/{reference.pk}/delete", {}),
    )}
    missing = member_client.get("/app/voices/999999999/")

    assert set(gets.values()) == {404} and set(posts.values()) == {404}
    assert missing.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Their voice"
    assert VoiceReference.objects.for_tenant(other_profile.tenant).filter(pk=reference.pk).exists()


def test_a_reference_of_another_voice_is_not_found_under_mine(member, member_client, speech_wav):
    mine = _matched_voice(member.tenant, speech_wav, name="Mine")
    other = _matched_voice(member.tenant, speech_wav, name="Other")
    reference = VoiceReference.objects.for_tenant(member.tenant).get(profile=other)

    response = member_client.post(f"/app/voices/{mine.pk}/recordings/{reference.pk}/delete")

    assert response.status_code == 404
    assert VoiceReference.objects.for_tenant(member.tenant).filter(pk=reference.pk).exists()


def test_quality_rows_say_what_each_number_means():
    from voices.views import quality_context

    report = quality_context({"speech_seconds": 12.0, "snr_db": 9.4, "clipping_ratio": 0.02, "loudness_lufs": -41.0,
                              "peak_dbfs": -20.0, "multiple_speakers_suspected": True,
                              "hints": ["Too much background noise (SNR 9 dB); record in a quieter room."]})

    rows = {row["label"]: (row["value"], row["verdict"], row["tone"]) for row in report["rows"]}
    assert rows["Speech"] == ("12.0 s", "Good length", "success")
    assert rows["Signal to noise"] == ("9.4 dB", "Noisy: record in a quieter room", "danger")
    assert rows["Clipping"] == ("2.00 % of samples", "Clipped peaks: lower the input gain", "danger")
    assert rows["Loudness"] == ("−41.0 LUFS · peak −20.0 dBFS", "Very quiet: move closer to the microphone", "warning")
    assert rows["Speakers"][1] == "Upload the narrator alone"
    assert (report["verdict"], report["tone"]) == ("Usable, with advice", "warning")
