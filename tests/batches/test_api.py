"""The batches API in one process: creation with every limit checked first, progress,
cancel, retry, export and the cross-tenant rules."""

import csv
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics.models import UsageRecord
from batches.models import Batch
from synthesis.models import SynthesisJob
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

LINES = ["The first line.", "A second line, a little longer.", "Third and last."]


def _create(client, **extra):
    body = {"items": [{"text": line} for line in LINES], "format": "wav", **extra}
    return client.post("/api/v1/batches", body, format="json")


def test_batch_create_holds_all_characters_and_writes_one_job_per_item(api_client_for, dispatched):
    tenant = TenantFactory()

    response = _create(api_client_for(tenant), name="Lesson 1")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["items_total"], body["characters_total"]) == ("queued", 3, sum(map(len, LINES)))
    assert response["Location"] == f"/api/v1/batches/{body['id']}"
    jobs = SynthesisJob.objects.for_tenant(tenant).filter(batch_id=body["id"]).order_by("batch_index")
    assert [(j.batch_index, j.filename, j.mode, j.reservation_id) for j in jobs] == [
        (0, "0001.wav", "batch", None), (1, "0002.wav", "batch", None), (2, "0003.wav", "batch", None)]
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_reserved == sum(map(len, LINES))
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 1  # One slot for the whole batch.
    assert dispatched == [body["id"]]


def test_batch_from_an_uploaded_csv(api_client_for, dispatched):
    tenant = TenantFactory()
    data = b"text,filename\nHello.,hello\nGoodbye.,bye\n"

    response = api_client_for(tenant).post(
        "/api/v1/batches", {"file": SimpleUploadedFile("lines.csv", data), "format": "mp3", "speed": "1.2",
                            "name": "csv"},
        format="multipart")

    assert response.status_code == 201, response.json()
    assert response.json()["source_filename"]
    names = list(SynthesisJob.objects.for_tenant(tenant).order_by("batch_index").values_list("filename", flat=True))
    assert names == ["hello.mp3", "bye.mp3"]
    assert response.json()["options"]["audio"]["speed"] == 1.2


@pytest.mark.parametrize(("items", "code", "origin"), [
    (["Fine.", "", "Fine."], "invalid_text", "item 2"),
    (["Fine.", {"ssml": "<speak>broken"}], "invalid_ssml", "item 2"),
    (["Fine.", {"text": "Hi", "voice": "piper:nobody"}], "unknown_voice", "item 2"),
])
def test_batch_with_one_bad_item_is_refused_whole_naming_it(api_client_for, dispatched, items, code, origin):
    tenant = TenantFactory()

    response = api_client_for(tenant).post("/api/v1/batches", {"items": items}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["extra"]["origin"] == origin
    assert response.json()["message"].startswith(origin.capitalize())
    assert not Batch.objects.for_tenant(tenant).exists()
    assert not SynthesisJob.objects.for_tenant(tenant).exists()
    assert not QuotaReservation.objects.for_tenant(tenant).exists()


def test_uploaded_file_error_names_the_line(api_client_for, dispatched):
    tenant = TenantFactory()

    response = api_client_for(tenant).post(
        "/api/v1/batches", {"file": SimpleUploadedFile("lines.txt", b"Fine.\n?! ...\n")}, format="multipart")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_text")
    assert response.json()["message"].startswith("Line 2")


def test_batch_over_the_plans_item_limit_is_refused(api_client_for, dispatched):
    tenant = TenantFactory(plan__batch_items=2)

    response = _create(api_client_for(tenant))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_batch")
    assert response.json()["extra"]["limit"] == 2
    assert not SynthesisJob.objects.for_tenant(tenant).exists()


def test_batch_beyond_the_monthly_quota_is_refused_before_anything_runs(api_client_for, dispatched):
    tenant = TenantFactory(plan__monthly_characters=20)

    response = _create(api_client_for(tenant))

    assert (response.status_code, response.json()["code"]) == (429, "quota_exceeded")
    assert not Batch.objects.for_tenant(tenant).exists()
    assert not TenantQuota.objects.for_tenant(tenant).filter(jobs_in_flight__gt=0).exists()


def test_batch_webhook_on_loopback_is_refused(api_client_for, dispatched, settings):
    settings.PARLA_WEBHOOK_ALLOW_PRIVATE = False
    tenant = TenantFactory()

    response = _create(api_client_for(tenant), webhook_url="http://127.0.0.1:9/hook")

    assert (response.status_code, response.json()["code"]) == (400, "webhook_url_not_allowed")
    assert not Batch.objects.for_tenant(tenant).exists()


def test_batch_runs_to_completion_with_progress_usage_and_export(api_client_for, dispatched, run_batch):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    batch = Batch.objects.for_tenant(tenant).get(pk=_create(client).json()["id"])

    batch = run_batch(batch)
    detail = client.get(f"/api/v1/batches/{batch.pk}").json()

    assert detail["status"] == "completed"
    assert detail["progress"]["percent"] == 100.0
    assert detail["progress"]["counts"]["succeeded"] == 3
    assert detail["progress"]["characters_done"] == sum(map(len, LINES))
    assert UsageRecord.objects.for_tenant(tenant).count() == 3
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_used, period.characters_reserved) == (sum(map(len, LINES)), 0)
    assert TenantQuota.objects.for_tenant(tenant).get().jobs_in_flight == 0
    assert detail["export"]["status"] == "ready"
    export = client.get(detail["export"]["url"])
    assert export.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content)))
    assert archive.namelist() == ["audio/0001.wav", "audio/0002.wav", "audio/0003.wav", "manifest.json",
                                  "manifest.csv"]
    manifest = json.loads(archive.read("manifest.json"))
    assert [row["text"] for row in manifest["items"]] == LINES
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["file"] for row in rows] == ["audio/0001.wav", "audio/0002.wav", "audio/0003.wav"]
    assert all(float(row["duration"]) > 0 for row in rows)


def test_batch_manifest_csv_escapes_texts_that_are_formulas(api_client_for, dispatched, run_batch):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    texts = ["=1+1", "@SUM(A1) adds a column.", "-3 degrees tonight.", "A plain line."]
    created = client.post("/api/v1/batches", {"items": [{"text": text} for text in texts], "format": "wav"},
                          format="json")
    batch = run_batch(Batch.objects.for_tenant(tenant).get(pk=created.json()["id"]))

    export = client.get(f"/api/v1/batches/{batch.pk}/export")

    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content)))
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["text"] for row in rows] == ["'=1+1", "'@SUM(A1) adds a column.", "'-3 degrees tonight.",
                                             "A plain line."]
    assert [row["index"] for row in rows] == ["1", "2", "3", "4"]  # Numbers are written as they are.
    manifest = json.loads(archive.read("manifest.json"))
    assert [item["text"] for item in manifest["items"]] == texts  # JSON is not a spreadsheet.


def test_batch_items_are_listed_in_input_order(api_client_for, dispatched):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    batch_id = _create(client).json()["id"]

    page = client.get(f"/api/v1/batches/{batch_id}/items?page_size=2").json()
    rest = client.get(page["next"]).json()

    assert [row["index"] for row in page["results"]] == [1, 2]
    assert [row["index"] for row in rest["results"]] == [3]
    assert page["results"][0]["text"] == LINES[0]


def test_cancel_stops_queued_items_and_refunds_them(api_client_for, dispatched, run_batch):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    batch_id = _create(client).json()["id"]
    first = SynthesisJob.objects.for_tenant(tenant).get(batch_id=batch_id, batch_index=0)
    from synthesis.jobs import synthesis_job_execute

    synthesis_job_execute(tenant_id=tenant.pk, job_id=first.pk)
    response = client.post(f"/api/v1/batches/{batch_id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["progress"]["counts"] == {**response.json()["progress"]["counts"],
                                                     "succeeded": 1, "cancelled": 2}
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_used, period.characters_reserved) == (len(LINES[0]), 0)
    assert client.post(f"/api/v1/batches/{batch_id}/cancel").status_code == 409


def test_retry_runs_only_the_failed_items(api_client_for, dispatched, run_batch):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    batch = Batch.objects.for_tenant(tenant).get(pk=_create(client).json()["id"])
    # The second item's voice disappears before a worker runs it (an operator removed it).
    SynthesisJob.objects.for_tenant(tenant).filter(batch=batch, batch_index=1).update(voice_id="piper:gone")
    batch = run_batch(batch)
    assert batch.status == "completed_with_errors"
    SynthesisJob.objects.for_tenant(tenant).filter(batch=batch, batch_index=1).update(
        voice_id="piper:en_US-joe-medium")

    response = client.post(f"/api/v1/batches/{batch.pk}/retry")
    batch = run_batch(batch)

    assert response.status_code == 200
    assert batch.status == "completed"
    assert UsageRecord.objects.for_tenant(tenant).count() == 3
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == sum(map(len, LINES))


def test_export_before_the_batch_ends_is_409(api_client_for, dispatched):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    batch_id = _create(client).json()["id"]

    response = client.get(f"/api/v1/batches/{batch_id}/export")

    assert (response.status_code, response.json()["code"]) == (409, "export_not_ready")


def test_batches_list_shows_only_the_callers(api_client_for, dispatched):
    mine, theirs = TenantFactory(), TenantFactory()
    _create(api_client_for(theirs))
    own = _create(api_client_for(mine)).json()["id"]

    rows = api_client_for(mine).get("/api/v1/batches").json()["results"]

    assert [row["id"] for row in rows] == [own]


def test_batch_items_stay_out_of_the_jobs_history(api_client_for, dispatched):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    _create(client)

    assert client.get("/api/v1/jobs").json()["results"] == []
