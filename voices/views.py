"""The Voices pages: the catalog and the tenant's own voices, making a voice from recordings,
editing and deleting it, its recordings with their quality reports, and previews.

The views parse forms and call the same services and selectors as /api/v1/voices. Recordings
can be checked one by one before the voice is made (voices:reference-check, which stores
nothing); the voice itself is made from a plain multipart form post, so the page also works
without scripts.
"""

import math

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from synthesis.api.responses import job_audio_response
from synthesis.jobs import waiting_for_worker
from synthesis.models import SynthesisJob
from synthesis.selectors import ResolvedVoice, speech_voice_resolve
from tenants.dashboard import (
    application_error_json_response,
    form_add_application_error,
    message_add_application_error,
    posts_rate_limited,
    tenant_page,
)
from tenants.errors import ApplicationError, ErrorCode, error_body
from tenants.services import AuditContext
from voices.audio_checks import MAX_SPEECH_SECONDS, MIN_SPEECH_SECONDS, reference_quality_report, reference_validate
from voices.audio_checks.quality import CLIPPING_HINT_RATIO, NOISY_SNR_DB, QUIET_LUFS
from voices.forms import (
    ACCEPT,
    LANGUAGE_SUGGESTIONS,
    ReferenceCheckForm,
    ReferencesAddForm,
    VoiceCreateForm,
    VoiceUpdateForm,
)
from voices.models import VoiceProfile
from voices.previews import preview_format_check, voice_preview_get_or_create
from voices.selectors import (
    engine_licence,
    voice_list,
    voice_profile_counts,
    voice_profile_get,
    voice_profile_list,
    voice_reference_get,
)
from voices.services import (
    uploads_read,
    voice_profile_create,
    voice_profile_delete,
    voice_profile_update,
    voice_reference_add,
    voice_reference_delete,
    voice_references_read,
)

# The page waits this long for a preview before answering "still being made" (the API waits
# PARLA_SYNC_WAIT_SECONDS; a page should not hang that long on one button).
PREVIEW_WAIT_SECONDS = 20.0
CLEAN_SNR_DB = 30.0
GOOD_SPEECH_SECONDS = 6.0


# --- Presentation -----------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    # A real minus sign: it reads better next to dB and LUFS.
    return f"{value:.{digits}f}".replace("-", "−")


def quality_rows(quality: dict) -> list[dict]:
    """A stored or fresh quality report as labelled rows: the number, and what it means."""
    rows = []
    speech = quality.get("speech_seconds")
    if speech is not None:
        short = speech < GOOD_SPEECH_SECONDS
        rows.append({"label": "Speech", "value": f"{_number(speech)} s",
                     "verdict": f"Usable; {GOOD_SPEECH_SECONDS:.0f} s or more gives a closer voice" if short
                     else "Good length", "tone": "warning" if short else "success"})
    snr = quality.get("snr_db")
    if snr is not None:
        if snr >= CLEAN_SNR_DB:
            verdict, tone = "Clean: little background noise", "success"
        elif snr >= NOISY_SNR_DB:
            verdict, tone = "Some background noise", "warning"
        else:
            verdict, tone = "Noisy: record in a quieter room", "danger"
        rows.append({"label": "Signal to noise", "value": f"{_number(snr)} dB", "verdict": verdict, "tone": tone})
    clipping = quality.get("clipping_ratio")
    if clipping is not None:
        clipped = clipping >= CLIPPING_HINT_RATIO
        rows.append({"label": "Clipping", "value": f"{clipping * 100:.2f} % of samples",
                     "verdict": "Clipped peaks: lower the input gain" if clipped else "No clipping",
                     "tone": "danger" if clipped else "success"})
    loudness = quality.get("loudness_lufs")
    quiet = loudness is None or loudness < QUIET_LUFS
    peak = quality.get("peak_dbfs")
    rows.append({"label": "Loudness",
                 "value": f"{_number(loudness)} LUFS" + (f" · peak {_number(peak)} dBFS" if peak is not None else ""),
                 "verdict": "Very quiet: move closer to the microphone" if quiet else "Good level",
                 "tone": "warning" if quiet else "success"})
    if quality.get("multiple_speakers_suspected"):
        rows.append({"label": "Speakers", "value": "More than one?",
                     "verdict": "Upload the narrator alone", "tone": "warning"})
    return rows


def quality_context(quality: dict, *, filename: str = "") -> dict:
    hints = list(quality.get("hints") or [])
    return {
        "filename": filename,
        "rows": quality_rows(quality),
        "hints": hints,
        "verdict": "Usable, with advice" if hints else "Good recording",
        "tone": "warning" if hints else "success",
    }


def _progress_percent(profile: VoiceProfile) -> int:
    if profile.status == VoiceProfile.Status.READY:
        return 100
    return max(0, min(100, round(100 * float((profile.enrollment or {}).get("progress", 0.0)))))


def _decorate(profile: VoiceProfile) -> VoiceProfile:
    """What the templates show beside the model's fields: licence, progress, references' reports."""
    profile.licence = engine_licence(profile.engine)
    profile.commercial_use = bool(profile.licence and profile.licence.commercial_use)
    profile.progress_percent = _progress_percent(profile)
    profile.stage = (profile.enrollment or {}).get("stage", "")
    return profile


def _status_payload(profile: VoiceProfile) -> dict:
    return {
        "id": profile.pk,
        "status": profile.status,
        "status_label": profile.get_status_display(),
        "progress": _progress_percent(profile),
        "stage": (profile.enrollment or {}).get("stage", ""),
        "error": profile.error,
    }


def _limits(request) -> dict:
    plan = request.tenant.plan
    counts = voice_profile_counts(tenant=request.tenant)
    return {
        "plan": plan,
        "voices_used": counts["voices"],
        "learnt_used": counts["learnt"],
        "at_voice_limit": counts["voices"] >= plan.voices,
        "at_learnt_limit": counts["learnt"] >= plan.cloned_voices,
        "upload_mb": plan.upload_bytes / 1_000_000,
    }


def _add_upload_error(form, exc: ApplicationError, field: str = "references") -> None:
    """A refused recording names its file; other problems go where the service says."""
    if "file_index" in exc.extra:
        name = exc.extra.get("filename") or f"Recording {exc.extra['file_index'] + 1}"
        form.add_error(field, f"{name}: {exc.message}")
    else:
        form_add_application_error(form, exc, {"references": field})


# --- Pages ------------------------------------------------------------------------------------


@tenant_page
def voice_index(request):
    own = [_decorate(profile) for profile in voice_profile_list(tenant=request.tenant)]
    catalog = [voice for voice in voice_list(tenant=request.tenant, filters={"kind": "catalog"}) if not voice.own]
    return render(request, "voices/index.html", {
        "own_voices": own,
        "catalog_voices": catalog,
        **_limits(request),
    })


def _create(request, form: VoiceCreateForm) -> VoiceProfile | None:
    data = form.cleaned_data
    try:
        uploads = voice_references_read(tenant=request.tenant, files=data["references"])
        return voice_profile_create(
            tenant=request.tenant, name=data["name"], language=data["language"], description=data["description"],
            uploads=uploads, context=AuditContext.from_request(request),
        )
    except ApplicationError as exc:
        _add_upload_error(form, exc)
        return None


@tenant_page
@posts_rate_limited
def voice_create(request):
    posted = request.method == "POST"
    form = VoiceCreateForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        profile = _create(request, form)
        if profile is not None:
            messages.success(request, f"“{profile.name}” is being made from your recordings. "
                                      "It can speak once enrollment is ready.")
            return redirect("voices:detail", voice_id=profile.pk)
    return render(request, "voices/create.html", {
        "form": form,
        "accept": ACCEPT,
        "languages": LANGUAGE_SUGGESTIONS,
        "min_seconds": MIN_SPEECH_SECONDS,
        "max_seconds": MAX_SPEECH_SECONDS,
        **_limits(request),
    })


def _detail_page(request, profile: VoiceProfile, *, edit_form=None, references_form=None):
    references = []
    for reference in profile.references.all():
        reference.report = quality_context(reference.quality or {})
        references.append(reference)
    plan = request.tenant.plan
    return render(request, "voices/detail.html", {
        "voice": _decorate(profile),
        "references": references,
        "edit_form": edit_form or VoiceUpdateForm.for_profile(profile),
        "references_form": references_form or ReferencesAddForm(),
        "accept": ACCEPT,
        "languages": LANGUAGE_SUGGESTIONS,
        "references_left": max(0, plan.references_per_voice - len(references)),
        "plan": plan,
        "upload_mb": plan.upload_bytes / 1_000_000,
        "min_seconds": MIN_SPEECH_SECONDS,
        "max_seconds": MAX_SPEECH_SECONDS,
        "takes_references": profile.kind != VoiceProfile.Kind.CATALOG,
    })


@tenant_page
def voice_detail(request, voice_id: int):
    """The voice, its recordings, and the edit form (which posts here)."""
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    if request.method != "POST":
        return _detail_page(request, profile)
    form = VoiceUpdateForm.for_profile(profile, request.POST)
    if form.is_valid():
        changes = form.changes()
        if not changes:
            messages.info(request, "Nothing to save: the voice is unchanged.")
            return redirect("voices:detail", voice_id=profile.pk)
        try:
            profile = voice_profile_update(tenant=request.tenant, profile=profile,
                                           context=AuditContext.from_request(request), **changes)
        except ApplicationError as exc:
            form_add_application_error(form, exc)
        else:
            messages.success(request, f"“{profile.name}” is saved.")
            return redirect("voices:detail", voice_id=profile.pk)
    return _detail_page(request, profile, edit_form=form)


@require_POST
@tenant_page
def voice_delete(request, voice_id: int):
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    voice_profile_delete(tenant=request.tenant, profile=profile, context=AuditContext.from_request(request))
    messages.success(request, f"“{profile.name}” and its recordings are deleted.")
    return redirect("voices:index")


@require_POST
@tenant_page
def reference_add(request, voice_id: int):
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    form = ReferencesAddForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            uploads = voice_references_read(tenant=request.tenant, files=form.cleaned_data["references"],
                                            profile=profile)
            added = voice_reference_add(tenant=request.tenant, profile=profile, uploads=uploads,
                                        context=AuditContext.from_request(request))
        except ApplicationError as exc:
            _add_upload_error(form, exc)
        else:
            noun = "recording was" if len(added) == 1 else "recordings were"
            messages.success(request, f"{len(added)} {noun} added; the voice is enrolled again with them.")
            return redirect(reverse("voices:detail", kwargs={"voice_id": profile.pk}) + "#recordings")
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    return _detail_page(request, profile, references_form=form)


@require_POST
@tenant_page
def reference_delete(request, voice_id: int, reference_id: int):
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    reference = voice_reference_get(tenant=request.tenant, profile=profile, reference_id=reference_id)
    try:
        voice_reference_delete(tenant=request.tenant, reference=reference, context=AuditContext.from_request(request))
    except ApplicationError as exc:
        message_add_application_error(request, exc)
    else:
        messages.success(request, "The recording is removed; the voice is enrolled again without it.")
    return redirect(reverse("voices:detail", kwargs={"voice_id": profile.pk}) + "#recordings")


# --- Small JSON and audio views for the page scripts --------------------------------------------


def _json_error(exc: ApplicationError) -> JsonResponse:
    return application_error_json_response(exc)


@require_POST
@tenant_page
@posts_rate_limited(json=True)
def reference_check(request):
    """Validate one recording and report its quality, as making the voice would; store nothing."""
    form = ReferenceCheckForm(request.POST, request.FILES)
    if not form.is_valid():
        return JsonResponse(error_body(ErrorCode.VALIDATION_ERROR, form.errors["file"][0],
                                       {"fields": {"file": form.errors["file"]}}), status=400)
    try:
        upload = uploads_read([form.cleaned_data["file"]], max_bytes=request.tenant.plan.upload_bytes)[0]
        reference = reference_validate(upload.data, filename=upload.filename,
                                       max_bytes=request.tenant.plan.upload_bytes)
    except ApplicationError as exc:
        return _json_error(exc)
    report = reference_quality_report(reference).as_dict()
    html = render_to_string("voices/_quality.html", {"report": quality_context(report)}, request=request)
    return JsonResponse({"ok": True, "report": report, "html": html,
                         "speech_seconds": report["speech_seconds"], "hints": report["hints"]})


@require_GET
@tenant_page
def voice_status(request, voice_id: int):
    """Enrollment status and progress, polled by the pages while a voice is enrolling."""
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    return JsonResponse(_status_payload(profile))


def _preview_response(request, *, voice: ResolvedVoice, audio_format: str):
    """The stored preview, or a new one (waited for, bounded); JSON while it is not ready."""
    job = voice_preview_get_or_create(
        tenant=request.tenant, voice=voice, audio_format=audio_format, created_by=request.user,
        wait_seconds=min(settings.PARLA_SYNC_WAIT_SECONDS, PREVIEW_WAIT_SECONDS),
    )
    if job.status == SynthesisJob.Status.SUCCEEDED:
        return job_audio_response(job)
    if job.finished:
        return JsonResponse(error_body(job.error_code or ErrorCode.SYNTHESIS_FAILED,
                                       job.error_message or "The preview could not be made."), status=502)
    message = ("No speech worker is running right now; the preview is queued."
               if waiting_for_worker(job) else "The preview is still being made; try again in a moment.")
    return JsonResponse({"status": job.status, "job": job.pk, "message": message}, status=202)


@require_GET
@tenant_page
def voice_preview(request, voice_id: int):
    profile = voice_profile_get(tenant=request.tenant, voice_profile_id=voice_id)
    try:
        audio_format = preview_format_check(request.GET.get("format", "mp3"))
        voice = speech_voice_resolve(tenant=request.tenant, voice=str(profile.pk))
        return _preview_response(request, voice=voice, audio_format=audio_format)
    except ApplicationError as exc:
        return _json_error(exc)


@require_GET
@tenant_page
def catalog_preview(request, voice_id: str):
    try:
        audio_format = preview_format_check(request.GET.get("format", "mp3"))
        voice = speech_voice_resolve(tenant=request.tenant, voice=voice_id)
        if voice.profile is not None:  # "12" names an own voice: that has its own URL.
            own = reverse("voices:preview", kwargs={"voice_id": voice.profile.pk})
            return redirect(f"{own}?format={audio_format}")
        return _preview_response(request, voice=voice, audio_format=audio_format)
    except ApplicationError as exc:
        return _json_error(exc)
