"""The Batches pages without a browser: who may use them, creating from pasted lines and files,
the forms' messages, progress, cancel, retry, downloads, and other tenants' ids (404)."""

import io
import re
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from batches.models import Batch
from batches.services import batch_finish
from synthesis.models import SynthesisJob
from tenants.models import AuditEvent, Membership
from tests.batches.conftest import dispatched  # noqa: F401  (records dispatches instead of using a broker)
from tests.batches.factories import BatchFactory
from tests.helpers import signed_in_client
from tests.synthesis.factories import SynthesisJobFactory
from tests.tenants.factories import MembershipFactory, TenantFactory
from tests.voices.factories import VoiceProfileFactory

pytestmark = pytest.mark.django_db

LINES = "The first line.\n\nA second line, a little longer.\nThird and last.\n"


@pytest.fixture
def member():
    return MembershipFactory(role=Membership.Role.MEMBER)


@pytest.fixture
def member_client(member):
    return signed_in_client(member)


def _form(**overrides) -> dict:
    data = {"name": "Lesson 1", "source": "lines", "lines": LINES, "voice": "piper:en_US-joe-medium", "format": "mp3"}
    data.update(overrides)
    return data


def _items(batch) -> list[SynthesisJob]:
    return list(SynthesisJob.objects.for_tenant(batch.tenant_id).filter(batch=batch).order_by("batch_index"))


def _batch_with_items(tenant, statuses: list[str], **batch_fields) -> Batch:
    batch = BatchFactory(tenant=tenant, items_total=len(statuses), **batch_fields)
    for index, status in enumerate(statuses):
        done = status == SynthesisJob.Status.SUCCEEDED
        SynthesisJobFactory(
            tenant=tenant, batch=batch, batch_index=index, mode=SynthesisJob.Mode.BATCH, status=status,
            filename=f"{index + 1:04d}.wav", text=f"Item number {index + 1}.",
            storage_path=default_storage.save(f"tenants/{tenant.pk}/jobs/item.wav", ContentFile(b"RIFFdata"))
            if done else "",
            error_code="synthesis_failed" if status == SynthesisJob.Status.FAILED else "",
            error_message="The engine gave up." if status == SynthesisJob.Status.FAILED else "",
        )
    return batch


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/app/batches/", "/app/batches/new"])
def test_batch_pages_send_visitors_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("role", [Membership.Role.MEMBER, Membership.Role.ADMIN, Membership.Role.OWNER])
def test_batch_pages_are_open_to_every_role(role):
    client = signed_in_client(MembershipFactory(role=role))

    assert client.get("/app/batches/").status_code == 200
    assert client.get("/app/batches/new").status_code == 200


def test_batch_forms_require_csrf(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    batch = _batch_with_items(member.tenant, ["queued"], status=Batch.Status.RUNNING)

    created = client.post("/app/batches/new", _form())
    cancelled = client.post(f"/app/batches/{batch.pk}/cancel")

    assert (created.status_code, cancelled.status_code) == (403, 403)
    assert list(Batch.objects.for_tenant(member.tenant)) == [batch]
    batch.refresh_from_db()
    assert batch.cancel_requested_at is None


# --- List -------------------------------------------------------------------------------------


def test_batch_index_has_an_empty_state(member_client):
    page = member_client.get("/app/batches/").content.decode()

    assert "No batches yet" in page and 'href="/app/batches/new"' in page


def test_batch_index_lists_only_this_tenants_batches_with_progress(member, member_client):
    _batch_with_items(member.tenant, ["succeeded", "queued"], name="Half way", status=Batch.Status.RUNNING)
    BatchFactory(tenant=TenantFactory(), name="Their batch")

    page = member_client.get("/app/batches/").content.decode()

    at = page.index("Half way")
    row = page[page.rindex("<tr", 0, at):page.index("</tr>", at)]
    assert "Running" in row and "1 of 2 items" in row
    assert 'role="progressbar"' in row and 'aria-valuenow="50"' in row
    assert "Their batch" not in page


# --- Create -----------------------------------------------------------------------------------


def test_batch_create_from_pasted_lines(member, member_client, dispatched):
    response = member_client.post("/app/batches/new", _form(), follow=True)

    batch = Batch.objects.for_tenant(member.tenant).get()
    assert response.redirect_chain == [(f"/app/batches/{batch.pk}/", 302)]
    assert (batch.name, batch.items_total, batch.voice_id) == ("Lesson 1", 3, "piper:en_US-joe-medium")
    assert [(item.text, item.filename) for item in _items(batch)] == [
        ("The first line.", "0001.mp3"), ("A second line, a little longer.", "0002.mp3"),
        ("Third and last.", "0003.mp3")]
    assert dispatched == [batch.pk]
    page = response.content.decode()
    assert "The batch of 3 items is queued." in page
    assert 'role="progressbar"' in page and 'aria-valuenow="0"' in page
    assert AuditEvent.objects.for_tenant(member.tenant).filter(action="batch.created").exists()


def test_batch_create_from_an_uploaded_csv(member, member_client, dispatched):
    data = b"text,filename\nHello there.,hello\nGoodbye now.,bye\n"

    member_client.post("/app/batches/new", _form(source="file", lines="", format="wav",
                                                 file=SimpleUploadedFile("lines.csv", data)))

    batch = Batch.objects.for_tenant(member.tenant).get()
    assert batch.source_filename == "lines.csv"
    assert [(item.text, item.filename) for item in _items(batch)] == [("Hello there.", "hello.wav"),
                                                                       ("Goodbye now.", "bye.wav")]


def test_batch_create_from_a_word_document(member, member_client, dispatched):
    import docx

    document = docx.Document()
    for text in ("Chapter one begins.", "", "Chapter two follows."):
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    upload = SimpleUploadedFile("script.docx", buffer.getvalue())

    member_client.post("/app/batches/new", _form(source="file", file=upload))

    batch = Batch.objects.for_tenant(member.tenant).get()
    assert [item.text for item in _items(batch)] == ["Chapter one begins.", "Chapter two follows."]


def test_batch_create_with_an_own_voice(member, member_client, dispatched):
    voice = VoiceProfileFactory(tenant=member.tenant, name="Brand narrator")

    member_client.post("/app/batches/new", _form(voice=str(voice.pk)))

    assert {item.voice_profile_id for item in _items(Batch.objects.for_tenant(member.tenant).get())} == {voice.pk}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lines": "  \n \n"}, "Paste at least one line of text."),
        ({"source": "file", "lines": ""}, "Choose a file to upload."),
        ({"source": "file", "file": SimpleUploadedFile("empty.txt", b"")},
         "The file is empty: there is nothing in it to speak."),
        ({"source": "file", "file": SimpleUploadedFile("blank.txt", b"\n  \n")}, "The file has no text to speak."),
        ({"source": "file", "file": SimpleUploadedFile("slides.pdf", b"%PDF-1.4 ...")},
         "Upload a TXT, CSV, Markdown or Word (.docx) file; “slides.pdf” is none of those."),
        ({"source": "file", "file": SimpleUploadedFile("table.csv", b"name,age\nAda,36\n")},
         "The CSV needs a header row with a &#x27;text&#x27; (or &#x27;ssml&#x27;) column"),
        ({"source": "file", "file": SimpleUploadedFile("latin1.txt", "Ça va.".encode("latin-1"))},
         "The file is not UTF-8 text (line 1)."),
        ({"source": "file", "file": SimpleUploadedFile("fake.docx", b"not a zip at all")},
         "The file is not a readable Word document (.docx)."),
        ({"voice": "piper:nobody"}, "Choose one of the voices in the list."),
        ({"format": "pcm"}, "Select a valid choice. pcm is not one of the available choices."),
    ],
)
def test_batch_create_explains_invalid_input(member, member_client, dispatched, overrides, message):
    response = member_client.post("/app/batches/new", _form(**overrides))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Batch.objects.for_tenant(member.tenant).exists()
    assert dispatched == []


def test_batch_create_refuses_more_items_than_the_plan_allows(member, member_client, dispatched):
    member.tenant.plan.batch_items = 2
    member.tenant.plan.save()

    response = member_client.post("/app/batches/new", _form())

    assert (f"The batch has more than 2 items; the {member.tenant.plan.name} plan allows 2 per batch."
            in response.content.decode())
    assert not Batch.objects.for_tenant(member.tenant).exists()


def test_a_plan_limit_refused_on_the_page_is_counted_for_operators(member, member_client, dispatched):
    from prometheus_client.parser import text_string_to_metric_families

    from analytics.metrics import metrics_render

    def plan_limit_rejections() -> float:
        families = text_string_to_metric_families(metrics_render()[0].decode())
        return sum(sample.value for family in families for sample in family.samples
                   if sample.name == "parla_quota_rejections_total" and sample.labels.get("reason") == "plan_limit")

    member.tenant.plan.batch_items = 2
    member.tenant.plan.save()
    before = plan_limit_rejections()

    member_client.post("/app/batches/new", _form())

    assert plan_limit_rejections() - before == 1


def test_batch_create_names_the_line_that_is_too_long(member, member_client, dispatched):
    member.tenant.plan.request_characters = 20
    member.tenant.plan.save()

    response = member_client.post("/app/batches/new", _form())

    assert "Line 3 is 31 characters; the plan accepts 20 per item." in response.content.decode()
    assert not Batch.objects.for_tenant(member.tenant).exists()


def test_batch_create_explains_an_exhausted_quota(member, member_client, dispatched):
    member.tenant.plan.monthly_characters = 5
    member.tenant.plan.save()

    response = member_client.post("/app/batches/new", _form())

    assert re.search(r"This batch needs \d+ characters, but 5 are left this month\.", response.content.decode())
    assert not Batch.objects.for_tenant(member.tenant).exists()


def test_batch_create_explains_a_voice_that_is_not_ready(member, member_client, dispatched):
    voice = VoiceProfileFactory(tenant=member.tenant, kind="matched", engine="kokoro", base_voice_id="",
                                status="enrolling", name="Learning")

    response = member_client.post("/app/batches/new", _form(voice=str(voice.pk)))

    assert "Choose one of the voices in the list." in response.content.decode()
    assert not Batch.objects.for_tenant(member.tenant).exists()


# --- One batch --------------------------------------------------------------------------------


def test_batch_detail_shows_progress_items_and_actions(member, member_client):
    batch = _batch_with_items(member.tenant, ["succeeded", "succeeded", "failed", "queued"], name="Four",
                              status=Batch.Status.RUNNING)

    page = member_client.get(f"/app/batches/{batch.pk}/").content.decode()

    label = page.index('aria-label="Batch progress"')
    bar = page[page.rindex("<div", 0, label):page.index(">", label)]
    assert 'role="progressbar"' in bar and 'aria-valuenow="75"' in bar
    assert "3 of 4 items" in page and "75 %" in page
    assert "The engine gave up." in page
    assert 'id="cancel-form"' in page and 'id="retry-form" hidden' in page
    items = _items(batch)
    assert f"/app/batches/{batch.pk}/items/{items[0].pk}/audio?download=1" in page


def test_batch_progress_json_has_percent_eta_counts_and_items(member, member_client):
    batch = _batch_with_items(member.tenant, ["succeeded", "running", "queued", "queued"], status=Batch.Status.RUNNING)
    first = _items(batch)[0]

    state = member_client.get(f"/app/batches/{batch.pk}/progress").json()

    assert (state["status"], state["percent"], state["done"], state["total"]) == ("running", 25.0, 1, 4)
    assert state["counts"] == {"succeeded": 1, "failed": 0, "running": 1, "queued": 2, "cancelled": 0}
    assert (state["can_cancel"], state["can_retry"], state["export"]["url"]) == (True, False, None)
    assert [item["status"] for item in state["items"]] == ["succeeded", "running", "queued", "queued"]
    assert state["items"][0]["audio_url"] == f"/app/batches/{batch.pk}/items/{first.pk}/audio"
    assert state["items"][1]["audio_url"] is None


def test_batch_cancel_drops_queued_items(member, member_client, dispatched):
    member_client.post("/app/batches/new", _form())
    batch = Batch.objects.for_tenant(member.tenant).get()

    response = member_client.post(f"/app/batches/{batch.pk}/cancel", follow=True)

    batch.refresh_from_db()
    assert batch.status == Batch.Status.CANCELLED
    assert {item.status for item in _items(batch)} == {"cancelled"}
    assert "The batch is cancelled." in response.content.decode()
    again = member_client.post(f"/app/batches/{batch.pk}/cancel", follow=True)
    assert "The batch has already ended (cancelled)." in again.content.decode()


def test_batch_retry_queues_the_failed_items_again(member, member_client, dispatched):
    member_client.post("/app/batches/new", _form())
    batch = Batch.objects.for_tenant(member.tenant).get()
    failed = _items(batch)[1]
    SynthesisJob.objects.for_tenant(member.tenant).filter(batch=batch).exclude(pk=failed.pk).update(status="succeeded")
    SynthesisJob.objects.for_tenant(member.tenant).filter(pk=failed.pk).update(status="failed", error_code="x")
    batch_finish(tenant_id=member.tenant.pk, batch_id=batch.pk)

    response = member_client.post(f"/app/batches/{batch.pk}/retry", follow=True)

    batch.refresh_from_db()
    failed.refresh_from_db()
    assert (batch.status, failed.status) == ("running", "queued")
    assert "The failed items are queued again." in response.content.decode()


def test_batch_retry_explains_when_there_is_nothing_to_retry(member, member_client):
    batch = _batch_with_items(member.tenant, ["queued"], status=Batch.Status.RUNNING)

    response = member_client.post(f"/app/batches/{batch.pk}/retry", follow=True)

    assert ("Only a batch that has ended (and was not cancelled) can retry its failed items."
            in response.content.decode())


def test_batch_export_downloads_the_zip_when_ready(member, member_client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", "{}")
    batch = _batch_with_items(member.tenant, ["succeeded"], status=Batch.Status.COMPLETED,
                              export_status=Batch.ExportStatus.READY, export_size=len(buffer.getvalue()),
                              export_path=default_storage.save("tenants/x/batch.zip", ContentFile(buffer.getvalue())))

    response = member_client.get(f"/app/batches/{batch.pk}/export")

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="parla-batch-{batch.pk}.zip"'
    assert zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist() == ["manifest.json"]


def test_batch_export_before_it_is_written_explains(member, member_client):
    batch = _batch_with_items(member.tenant, ["queued"], status=Batch.Status.RUNNING)

    response = member_client.get(f"/app/batches/{batch.pk}/export", follow=True)

    assert "The ZIP is not ready yet" in response.content.decode()


def test_batch_item_audio_plays_and_downloads_under_its_file_name(member, member_client):
    batch = _batch_with_items(member.tenant, ["succeeded", "queued"], status=Batch.Status.RUNNING)
    done, waiting = _items(batch)

    played = member_client.get(f"/app/batches/{batch.pk}/items/{done.pk}/audio")
    downloaded = member_client.get(f"/app/batches/{batch.pk}/items/{done.pk}/audio?download=1")
    not_yet = member_client.get(f"/app/batches/{batch.pk}/items/{waiting.pk}/audio")

    assert played.status_code == 200 and played["Content-Type"] == "audio/wav"
    assert downloaded["Content-Disposition"] == 'attachment; filename="0001.wav"'
    assert not_yet.status_code == 409 and "try again when it has succeeded" in not_yet.content.decode()


# --- Other tenants ----------------------------------------------------------------------------


def test_another_tenants_batch_is_not_found_by_url(member, member_client):
    theirs = _batch_with_items(TenantFactory(), ["succeeded", "queued"], status=Batch.Status.RUNNING,
                               name="Their batch")
    item = _items(theirs)[0]
    mine = _batch_with_items(member.tenant, ["queued"], status=Batch.Status.RUNNING)

    gets = [member_client.get(url).status_code for url in (
        f"/app/batches/{theirs.pk}/", f"/app/batches/{theirs.pk}/progress", f"/app/batches/{theirs.pk}/export",
        f"/app/batches/{theirs.pk}/items/{item.pk}/audio", f"/app/batches/{mine.pk}/items/{item.pk}/audio",
        "/app/batches/999999999/",
    )]
    posts = [member_client.post(url).status_code for url in (
        f"/app/batches/{theirs.pk}/cancel", f"/app/batches/{theirs.pk}/retry",
    )]

    assert set(gets) == {404} and set(posts) == {404}
    theirs.refresh_from_db()
    assert theirs.cancel_requested_at is None and theirs.status == Batch.Status.RUNNING


def test_batch_create_with_an_empty_form_explains(member, member_client, dispatched):
    response = member_client.post("/app/batches/new", {})

    page = response.content.decode()
    assert "Paste at least one line of text." in page
    assert not Batch.objects.for_tenant(member.tenant).exists()


@pytest.mark.parametrize(
    ("eta", "finished", "done", "text"),
    [
        (None, False, 0, "Estimating time left…"),
        (0.4, False, 3, "Almost done"),
        (42.2, False, 3, "About 42 s left"),
        (150, False, 3, "About 2 min left"),
        (9000, False, 3, "About 2.5 h left"),
        (None, True, 3, ""),
    ],
)
def test_eta_is_said_in_words(eta, finished, done, text):
    from batches.views import eta_text

    assert eta_text(eta, finished=finished, done=done) == text
