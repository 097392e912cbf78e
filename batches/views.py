"""The Batches pages: the tenant's batches, a new batch from pasted lines or a file, and a
batch's page with live progress, cancel, retry, per-item audio and the ZIP.

Input is read by batches.parsing and the batch made by batches.services.batch_create, as in
/api/v1/batches. The batch page polls batches:progress (a small JSON view) every couple of
seconds; without scripts it shows the state as of loading and can be reloaded.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_POST

from batches.export import batch_export_response
from batches.forms import ACCEPT, PASTED_FILENAME, BatchCreateForm
from batches.models import Batch
from batches.selectors import batch_get, batch_item_get, batch_items, batch_list
from batches.services import batch_cancel, batch_create, batch_items_from_upload, batch_progress, batch_retry
from synthesis.api.responses import job_audio_response
from synthesis.audio import AudioOptions
from synthesis.models import SynthesisJob
from tenants.dashboard import (
    form_add_application_error,
    message_add_application_error,
    posts_rate_limited,
    tenant_page,
)
from tenants.errors import ApplicationError, ErrorCode, NotFound
from tenants.selectors import tenant_usage_summary
from tenants.services import AuditContext
from voices.selectors import voice_list

LIST_SIZE = 50
# Items listed on a batch's page (and in its progress JSON); the ZIP always has them all.
ITEMS_SHOWN = 500
POLL_MILLISECONDS = 1500
_VOICE_CODES = {ErrorCode.UNKNOWN_VOICE, ErrorCode.VOICE_NOT_READY, ErrorCode.ENGINE_UNAVAILABLE}
_STATUS_TONES = {
    Batch.Status.QUEUED: "",
    Batch.Status.RUNNING: "accent",
    Batch.Status.COMPLETED: "success",
    Batch.Status.COMPLETED_WITH_ERRORS: "warning",
    Batch.Status.FAILED: "danger",
    Batch.Status.CANCELLED: "",
    SynthesisJob.Status.SUCCEEDED: "success",
}


def status_tone(status: str) -> str:
    return _STATUS_TONES.get(status, "")


def eta_text(eta_seconds: float | None, *, finished: bool, done: int) -> str:
    if finished:
        return ""
    if eta_seconds is None:
        return "Estimating time left…" if done == 0 else ""
    if eta_seconds < 1:
        return "Almost done"
    if eta_seconds < 60:
        return f"About {round(eta_seconds)} s left"
    minutes = round(eta_seconds / 60)
    if minutes < 90:
        return f"About {minutes} min left"
    return f"About {eta_seconds / 3600:.1f} h left"


def _size_text(size: int | None) -> str:
    if not size:
        return ""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{max(1, round(size / 1000))} KB"


def _export_state(batch: Batch) -> dict:
    ready = batch.export_status == Batch.ExportStatus.READY
    return {
        "status": batch.export_status,
        "label": batch.get_export_status_display(),
        "url": reverse("batches:export", kwargs={"batch_id": batch.pk}) if ready else None,
        "size": _size_text(batch.export_size) if ready else "",
        "error": batch.export_error,
    }


def _item_state(batch: Batch, item: SynthesisJob) -> dict:
    audio = reverse("batches:item-audio", kwargs={"batch_id": batch.pk, "job_id": item.pk})
    return {
        "id": item.pk,
        "index": item.batch_index + 1,
        "status": item.status,
        "status_label": item.get_status_display(),
        "tone": status_tone(item.status) or ("accent" if item.status == SynthesisJob.Status.RUNNING else ""),
        "error": item.error_message,
        "filename": item.filename,
        "seconds": round(item.audio_seconds, 1) if item.audio_available and item.audio_seconds else None,
        "audio_url": audio if item.audio_available else None,
        "download_url": f"{audio}?download=1" if item.audio_available else None,
    }


def batch_state(*, tenant, batch: Batch, with_items: bool = True) -> dict:
    """Everything the batch page shows that changes while it runs."""
    progress = batch_progress(tenant=tenant, batch=batch)
    counts = progress["counts"]
    failed = counts.get(SynthesisJob.Status.FAILED, 0)
    state = {
        "id": batch.pk,
        "label": f"Progress of {batch.name or f'batch {batch.pk}'}",
        "status": batch.status,
        "status_label": ("Cancelling…" if batch.cancel_requested_at and not batch.finished
                         else batch.get_status_display()),
        "tone": status_tone(batch.status),
        "finished": batch.finished,
        "percent": progress["percent"],
        "percent_whole": int(progress["percent"]),
        "done": progress["done"],
        "total": batch.items_total,
        "eta_seconds": progress["eta_seconds"],
        "eta_text": eta_text(progress["eta_seconds"], finished=batch.finished, done=progress["done"]),
        "counts": {
            "succeeded": counts.get(SynthesisJob.Status.SUCCEEDED, 0),
            "failed": failed,
            "running": counts.get(SynthesisJob.Status.RUNNING, 0),
            "queued": counts.get(SynthesisJob.Status.QUEUED, 0),
            "cancelled": counts.get(SynthesisJob.Status.CANCELLED, 0),
        },
        "audio_seconds": progress["audio_seconds"],
        "can_cancel": not batch.finished and not batch.cancel_requested_at,
        "can_retry": batch.finished and batch.status != Batch.Status.CANCELLED and failed > 0,
        "export": _export_state(batch),
    }
    if with_items:
        items = batch_items(tenant=tenant, batch=batch).order_by("batch_index")[:ITEMS_SHOWN]
        state["items"] = [_item_state(batch, item) for item in items]
    return state


# --- List and create ------------------------------------------------------------------------------


@tenant_page
def batch_index(request):
    batches = list(batch_list(tenant=request.tenant).order_by("-created_at")[:LIST_SIZE])
    rows = [{"batch": batch, "state": batch_state(tenant=request.tenant, batch=batch, with_items=False)}
            for batch in batches]
    return render(request, "batches/index.html", {
        "rows": rows,
        "list_size": LIST_SIZE,
        "poll_ms": POLL_MILLISECONDS,
    })


def _add_batch_error(form: BatchCreateForm, exc: ApplicationError) -> None:
    """Problems with the texts go under the texts, voice problems under the voice."""
    source = form.source_field
    field, message = None, None
    if exc.code in _VOICE_CODES:
        field = "voice" if source == "lines" else source
    elif exc.code == ErrorCode.QUOTA_EXCEEDED and "requested" in exc.extra:
        message = (f"This batch needs {exc.extra['requested']:,} characters, but "
                   f"{exc.extra.get('remaining', 0):,} are left this month.")
    elif not exc.extra.get("fields") and exc.code in (
        ErrorCode.INVALID_BATCH, ErrorCode.INVALID_TEXT, ErrorCode.INVALID_SSML, ErrorCode.TEXT_TOO_LONG,
    ):
        field = source
    form_add_application_error(form, exc, field=field, message=message)


def _create(request, form: BatchCreateForm) -> Batch | None:
    data = form.cleaned_data
    plan = request.tenant.plan
    try:
        if data["source"] == "file":
            upload = data["file"]
            # The size Django counted on receipt is checked before the file is read.
            raw = upload.read(plan.upload_bytes + 1) if (upload.size or 0) <= plan.upload_bytes else None
            if raw is None or len(raw) > plan.upload_bytes:
                form.add_error("file", f"The file is larger than this plan's limit of "
                                       f"{plan.upload_bytes / 1_000_000:g} MB.")
                return None
            source_filename = upload.name or ""
            items = batch_items_from_upload(tenant=request.tenant, data=raw, filename=source_filename)
        else:
            source_filename = ""
            items = batch_items_from_upload(tenant=request.tenant, data=data["lines"].encode("utf-8"),
                                            filename=PASTED_FILENAME)
        return batch_create(
            tenant=request.tenant,
            items=items,
            voice=data["voice"],
            audio=AudioOptions(format=data["format"]),
            name=data["name"].strip(),
            source_filename=source_filename,
            context=AuditContext.from_request(request),
        )
    except ApplicationError as exc:
        _add_batch_error(form, exc)
        return None


@tenant_page
@posts_rate_limited
def batch_create_page(request):
    voices = voice_list(tenant=request.tenant)
    posted = request.method == "POST"
    form = BatchCreateForm(request.POST if posted else None, request.FILES if posted else None, voices=voices,
                           default_voice=settings.PARLA_DEFAULT_VOICE)
    if posted and form.is_valid():
        batch = _create(request, form)
        if batch is not None:
            messages.success(request, f"The batch of {batch.items_total} items is queued.")
            return redirect("batches:detail", batch_id=batch.pk)
    ready = form.voices
    plan = request.tenant.plan
    return render(request, "batches/create.html", {
        "form": form,
        "accept": ACCEPT,
        "catalog_voices": [voice for voice in ready if not voice.own],
        "own_voices": [voice for voice in ready if voice.own],
        "selected_voice": str(form["voice"].value() or settings.PARLA_DEFAULT_VOICE),
        "plan": plan,
        "upload_mb": plan.upload_bytes / 1_000_000,
        "usage": tenant_usage_summary(tenant=request.tenant),
    })


# --- One batch --------------------------------------------------------------------------------------


@tenant_page
def batch_detail(request, batch_id: int):
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    state = batch_state(tenant=request.tenant, batch=batch)
    texts = {item.pk: item for item in
             batch_items(tenant=request.tenant, batch=batch).order_by("batch_index")
             .only("pk", "text", "ssml", "voice_id")[:ITEMS_SHOWN]}
    for item in state["items"]:
        job = texts[item["id"]]
        item["text"] = Truncator(job.text or job.ssml).chars(160)
        item["voice"] = job.voice_id
    return render(request, "batches/detail.html", {
        "batch": batch,
        "state": state,
        "items_shown": ITEMS_SHOWN,
        "poll_ms": POLL_MILLISECONDS,
    })


@require_GET
@tenant_page
def batch_progress_json(request, batch_id: int):
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    return JsonResponse(batch_state(tenant=request.tenant, batch=batch))


@require_POST
@tenant_page
def batch_cancel_view(request, batch_id: int):
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    try:
        batch = batch_cancel(tenant=request.tenant, batch=batch, context=AuditContext.from_request(request))
    except ApplicationError as exc:
        message_add_application_error(request, exc)
    else:
        if batch.finished:
            messages.success(request, "The batch is cancelled. Items that had finished keep their audio.")
        else:
            messages.success(request, "Cancelling: items not started yet are dropped; running ones finish first.")
    return redirect("batches:detail", batch_id=batch.pk)


@require_POST
@tenant_page
def batch_retry_view(request, batch_id: int):
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    try:
        batch_retry(tenant=request.tenant, batch=batch, context=AuditContext.from_request(request))
    except ApplicationError as exc:
        message_add_application_error(request, exc)
    else:
        messages.success(request, "The failed items are queued again.")
    return redirect("batches:detail", batch_id=batch.pk)


@require_GET
@tenant_page
def batch_export_download(request, batch_id: int):
    """The ZIP (audio/ and manifest.json, manifest.csv), as GET /api/v1/batches/{id}/export."""
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    if batch.export_status != Batch.ExportStatus.READY:
        messages.error(request, "The ZIP is not ready yet: it is written when the batch has ended.")
        return redirect("batches:detail", batch_id=batch.pk)
    return batch_export_response(batch)


@require_GET
@tenant_page
def batch_item_audio(request, batch_id: int, job_id: int):
    batch = batch_get(tenant=request.tenant, batch_id=batch_id)
    item = batch_item_get(tenant=request.tenant, batch=batch, job_id=job_id)
    download = request.GET.get("download") == "1"
    try:
        response = job_audio_response(item, download=download)
    except NotFound:
        raise
    except ApplicationError as exc:  # Not made (yet), or the item failed.
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
    if download and item.filename:
        response["Content-Disposition"] = f'attachment; filename="{item.filename}"'
    return response
