"""The Speak page: an editor, a player fed by the streaming API, and the recent history.

Generating from the page goes through /api/v1/speech/stream with the session (CSRF checked
there); without scripts the form posts here and queues the same job through the same service.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from synthesis.api.responses import job_audio_response
from synthesis.forms import SpeakForm
from synthesis.jobs import synthesis_job_create
from synthesis.models import SynthesisJob
from synthesis.selectors import speech_voice_resolve, synthesis_job_get, synthesis_job_list, voice_directory
from tenants.dashboard import form_add_application_error, posts_rate_limited, tenant_page
from tenants.errors import ApplicationError, NotFound
from tenants.selectors import tenant_usage_summary

HISTORY_SIZE = 12


def _history(tenant) -> list[SynthesisJob]:
    return list(synthesis_job_list(tenant=tenant).select_related("voice_profile")[:HISTORY_SIZE])


def _queue_job(request, form: SpeakForm) -> SynthesisJob | None:
    """Create the job as the API would; problems end up on the form."""
    audio = form.audio_options()
    if audio is None:
        return None
    data = form.cleaned_data
    source = {"ssml": data["text"]} if data["input_mode"] == "ssml" else {"text": data["text"]}
    try:
        voice = speech_voice_resolve(tenant=request.tenant, voice=data["voice"])
        return synthesis_job_create(tenant=request.tenant, voice=voice, mode=SynthesisJob.Mode.ASYNC,
                                    audio=audio, created_by=request.user, **source)
    except ApplicationError as exc:
        form_add_application_error(form, exc, {"ssml": "text"})
        return None


@tenant_page
@posts_rate_limited
def speak_page(request):
    voices = voice_directory().voice_options(tenant=request.tenant)
    form = SpeakForm(request.POST or None, voices=voices, default_voice=settings.PARLA_DEFAULT_VOICE)
    if request.method == "POST" and form.is_valid() and _queue_job(request, form):
        messages.success(request, "Your audio is being made. It appears in the history below when it is ready.")
        return redirect("synthesis:speak")
    usage = tenant_usage_summary(tenant=request.tenant)
    selected = str(form["voice"].value() or settings.PARLA_DEFAULT_VOICE)
    return render(request, "synthesis/speak.html", {
        "form": form,
        "catalog_voices": [voice for voice in voices if not voice.own],
        "own_voices": [voice for voice in voices if voice.own],
        "selected_voice": selected,
        "selected_voice_item": next((voice for voice in voices if voice.id == selected), None),
        "usage": usage,
        "request_characters": request.tenant.plan.request_characters,
        "jobs": _history(request.tenant),
    })


@require_GET
@tenant_page
def speak_history(request):
    """The history list alone, which the page reloads after each generation."""
    return render(request, "synthesis/_history.html", {"jobs": _history(request.tenant)})


@require_GET
@tenant_page
def job_audio(request, job_id: int):
    job = synthesis_job_get(tenant=request.tenant, job_id=job_id)
    try:
        return job_audio_response(job, download=request.GET.get("download") == "1")
    except NotFound:
        raise
    except ApplicationError as exc:  # Not ready yet, or the job made no audio.
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
