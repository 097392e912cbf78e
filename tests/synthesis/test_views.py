"""The Speak page: voices, quota, the no-script form path, the history and its audio."""


import pytest
from django.test import Client

from synthesis.models import SynthesisJob
from tenants.models import Membership
from tests.synthesis.factories import SynthesisJobFactory
from tests.tenants.factories import MembershipFactory, TenantFactory
from tests.voices.factories import VoiceProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return MembershipFactory(role=Membership.Role.MEMBER)


@pytest.fixture
def member_client(member):
    client = Client()
    client.force_login(member.user)
    return client


def _speak_form(**overrides) -> dict:
    data = {"input_mode": "text", "text": "Hello there.", "voice": "piper:en_US-joe-medium", "format": "mp3",
            "sample_rate": "", "speed": "1", "pitch": "0", "loudness": ""}
    data.update(overrides)
    return data


def test_speak_page_lists_catalog_and_own_voices_with_language_and_engine(member, member_client):
    VoiceProfileFactory(tenant=member.tenant, name="Brand narrator", language="en-GB")
    VoiceProfileFactory(tenant=TenantFactory(), name="Someone else's voice")

    page = member_client.get("/app/speak/").content.decode()

    assert '<optgroup label="Catalog voices">' in page
    assert "en_US-joe-medium · en-US · piper" in page
    assert '<optgroup label="Your voices">' in page
    assert "Brand narrator · en-GB · piper" in page
    assert "Someone else's voice" not in page


def test_speak_page_marks_non_commercial_voices(member_client, unlicensed_piper_voice):
    page = member_client.get("/app/speak/").content.decode()

    option = page.split(f'<option value="{unlicensed_piper_voice}"')[1].split("</option>")[0]
    assert 'data-commercial="false"' in option
    assert "· non-commercial" in option
    joe = page.split('<option value="piper:en_US-joe-medium"')[1].split("</option>")[0]
    assert "non-commercial" not in joe


def test_speak_page_disables_voices_that_are_not_ready(member, member_client):
    VoiceProfileFactory(tenant=member.tenant, name="Still learning", status="enrolling")

    page = member_client.get("/app/speak/").content.decode()

    option = page.split("Still learning")[0].rsplit("<option", 1)[1]
    assert " disabled" in option


def test_speak_page_shows_the_remaining_quota(member, member_client):
    member.tenant.plan.monthly_characters = 12_345
    member.tenant.plan.save()

    page = member_client.get("/app/speak/").content.decode()

    assert 'data-remaining="12345"' in page
    assert "12,345" in page


def test_speak_form_without_scripts_queues_a_job(member, member_client, captured_jobs):
    response = member_client.post("/app/speak/", _speak_form(speed="1.5", loudness="-16"), follow=True)

    job = SynthesisJob.objects.for_tenant(member.tenant).get()
    assert captured_jobs() == [job.pk]
    assert (job.mode, job.text, job.voice_id) == ("async", "Hello there.", "piper:en_US-joe-medium")
    assert job.audio_options["speed"] == 1.5 and job.audio_options["loudness_lufs"] == -16.0
    assert "Your audio is being made." in response.content.decode()


def test_speak_form_sends_ssml_as_ssml(member, member_client, captured_jobs):
    member_client.post("/app/speak/", _speak_form(input_mode="ssml", text="<speak>Hi <break time='1s'/> you.</speak>"))

    job = SynthesisJob.objects.for_tenant(member.tenant).get()
    assert job.ssml.startswith("<speak>") and job.text == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"text": "   "}, "Type some text to speak."),
        ({"voice": "piper:nobody"}, "Select a valid choice."),
        ({"speed": "3"}, "Ensure this value is less than or equal to 2.0."),
        ({"format": "pcm"}, "Select a valid choice. pcm is not one of the available choices."),
        ({"input_mode": "ssml", "text": "<speak>Unclosed"}, "The SSML is not well-formed XML"),
    ],
)
def test_speak_form_explains_invalid_input(member, member_client, captured_jobs, overrides, message):
    response = member_client.post("/app/speak/", _speak_form(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not SynthesisJob.objects.for_tenant(member.tenant).exists()


def test_speak_form_explains_an_exhausted_quota(member, member_client, captured_jobs):
    member.tenant.plan.monthly_characters = 5
    member.tenant.plan.save()

    response = member_client.post("/app/speak/", _speak_form(text="Far more than five characters."))

    assert "Monthly character quota exceeded." in response.content.decode()
    assert not SynthesisJob.objects.for_tenant(member.tenant).exists()


def test_speak_form_refuses_another_tenants_voice(member, member_client, captured_jobs):
    theirs = VoiceProfileFactory(tenant=TenantFactory())

    response = member_client.post("/app/speak/", _speak_form(voice=str(theirs.pk)))

    assert "Select a valid choice." in response.content.decode()
    assert not SynthesisJob.objects.for_tenant(member.tenant).exists()


def test_history_lists_the_tenants_recent_jobs_only(member, member_client):
    mine = SynthesisJobFactory(tenant=member.tenant, text="Our welcome message.")
    SynthesisJobFactory(tenant=TenantFactory(), text="Another company's secret.")

    page = member_client.get("/app/speak/history").content.decode()

    assert "Our welcome message." in page
    assert f"/app/speak/jobs/{mine.pk}/audio?download=1" in page
    assert "Another company's secret." not in page


def test_history_is_empty_at_first(member_client):
    page = member_client.get("/app/speak/").content.decode()

    assert "Nothing spoken yet" in page


def test_job_audio_serves_the_stored_file(member, member_client):
    job = SynthesisJobFactory(tenant=member.tenant)

    played = member_client.get(f"/app/speak/jobs/{job.pk}/audio")
    downloaded = member_client.get(f"/app/speak/jobs/{job.pk}/audio?download=1")

    assert played.status_code == 200 and b"".join(played.streaming_content) == b"RIFFdata"
    assert played["Content-Type"] == "audio/wav"
    assert downloaded["Content-Disposition"] == f'attachment; filename="parla-job-{job.pk}.wav"'


def test_job_audio_of_another_tenant_is_not_found(member_client):
    theirs = SynthesisJobFactory(tenant=TenantFactory())

    response = member_client.get(f"/app/speak/jobs/{theirs.pk}/audio")

    assert response.status_code == 404


def test_job_audio_of_an_unfinished_job_says_so(member, member_client):
    job = SynthesisJobFactory(tenant=member.tenant, status="queued", storage_path="")

    response = member_client.get(f"/app/speak/jobs/{job.pk}/audio")

    assert response.status_code == 409
    assert "The job is queued" in response.content.decode()


def test_page_session_can_stream_through_the_api_with_its_csrf_token(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    page = client.get("/app/speak/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]

    without = client.post("/api/v1/speech/stream", {"text": "Hi."}, content_type="application/json")
    with_token = client.post("/api/v1/speech/stream", {"text": "Hi.", "format": "flac"},
                             content_type="application/json", HTTP_X_CSRFTOKEN=token)

    assert without.status_code == 403
    assert with_token.status_code == 400  # past CSRF and scope checks, refused on its merits
    assert with_token.json()["extra"]["fields"] == {"format": ["Not a streaming format."]}


def test_jobs_made_through_the_api_with_the_page_session_record_the_member(member, member_client):
    response = member_client.post("/api/v1/jobs", {"text": "Hello from the dashboard."},
                                  content_type="application/json")

    assert response.status_code == 202, response.content
    job = SynthesisJob.objects.for_tenant(member.tenant).get(pk=response.json()["id"])
    assert (job.created_by_id, job.api_key_id) == (member.user_id, None)


def test_jobs_made_with_an_api_key_record_no_member(member, api_client_for):
    client = api_client_for(member.tenant)

    response = client.post("/api/v1/jobs", {"text": "Hello from a key."}, format="json")

    assert response.status_code == 202, response.content
    job = SynthesisJob.objects.for_tenant(member.tenant).get(pk=response.json()["id"])
    assert (job.created_by_id, job.api_key_id) == (None, client.api_key.pk)
