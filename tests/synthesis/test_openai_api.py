"""POST /v1/audio/speech, the OpenAI-compatible endpoint.

The first part drives it with the real `openai` SDK against a live server (a thread of this
process) and a real `rundramatiq` worker process; the second checks validation and routing
in-process, where nothing reaches a worker.
"""

import base64
import io
import json

import openai
import pytest
import requests
import soundfile as sf
from openai import OpenAI

from synthesis.api.openai import openai_error_body
from synthesis.models import SynthesisJob
from tenants.models import UsagePeriod
from tests.tenants.factories import ApiKeyFactory, PlanFactory, TenantFactory
from tests.voices.factories import VoiceProfileFactory

TEXT = "Hello from the OpenAI client."
LONG_TEXT = (
    "The first sentence arrives quickly. A second one follows right after it. "
    "Then a third sentence closes the paragraph, and the stream is done."
)


def _sdk(live_server, api_key: str) -> OpenAI:
    # No retries: a refused request must surface as the SDK's exception at once.
    return OpenAI(base_url=f"{live_server.url}/v1", api_key=api_key, max_retries=0, timeout=120)


def _key(tenant, scopes=None) -> str:
    return ApiKeyFactory.create_with_plaintext(tenant=tenant, scopes=scopes).plaintext


def _sse_events(response: requests.Response) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in response.iter_lines(decode_unicode=True)
            if line.startswith("data: ")]


# --- The SDK against a live server and a real worker ---------------------------------------

live = pytest.mark.django_db(transaction=True)


@live
def test_sdk_speech_wav_decodes_and_matches_the_job(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))

    audio = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav")

    samples, rate = sf.read(io.BytesIO(audio.content))
    assert rate == 22050
    assert 0.5 < len(samples) / rate < 10
    job = SynthesisJob.objects.for_tenant(tenant).get()
    assert (job.status, job.mode, job.voice_id) == ("succeeded", "stream", "piper:en_US-joe-medium")
    assert len(samples) / rate == pytest.approx(job.audio_seconds, abs=0.01)
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == len(TEXT)


@live
def test_sdk_speech_default_format_is_mp3(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))

    response = client.audio.speech.with_raw_response.create(model="tts-1-hd", voice="nova", input=TEXT)

    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["x-parla-job-id"] == str(SynthesisJob.objects.for_tenant(tenant).get().pk)
    assert sf.info(io.BytesIO(response.content)).duration > 0.5


@live
def test_sdk_speech_flac_is_rendered_whole_with_job_headers(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))

    response = client.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="flac", instructions="Speak warmly.",
    )

    samples, rate = sf.read(io.BytesIO(response.content))
    assert response.headers["content-type"] == "audio/flac"
    assert float(response.headers["x-parla-audio-seconds"]) == pytest.approx(len(samples) / rate, abs=0.01)
    assert response.headers["x-parla-characters"] == str(len(TEXT))
    assert SynthesisJob.objects.for_tenant(tenant).get().mode == "sync"


@live
def test_sdk_streaming_response_arrives_in_several_chunks(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))

    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=LONG_TEXT, response_format="pcm",
    ) as response:
        content_type = response.headers["content-type"]
        chunks = [chunk for chunk in response.iter_bytes() if chunk]

    data = b"".join(chunks)
    job = SynthesisJob.objects.for_tenant(tenant).get()
    assert len(chunks) > 1
    assert content_type.startswith("audio/pcm; rate=24000; channels=1")
    assert job.status == "succeeded"
    # OpenAI's pcm: raw 24 kHz, 16-bit, mono.
    assert len(data) % 2 == 0
    assert len(data) / 2 / 24000 == pytest.approx(job.audio_seconds, abs=0.01)
    assert len(data) / 2 / 24000 > 3


@live
def test_sse_stream_sends_deltas_then_done_with_usage(live_server, cpu_worker):
    tenant = TenantFactory()
    key = _key(tenant)

    response = requests.post(
        f"{live_server.url}/v1/audio/speech",
        json={"model": "gpt-4o-mini-tts", "voice": "alloy", "input": LONG_TEXT, "response_format": "pcm",
              "stream_format": "sse"},
        headers={"Authorization": f"Bearer {key}"}, stream=True, timeout=120,
    )
    events = _sse_events(response)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    types = [event["type"] for event in events]
    assert types[-1] == "speech.audio.done"
    assert set(types[:-1]) == {"speech.audio.delta"}
    assert len(types) > 2
    audio = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    job = SynthesisJob.objects.for_tenant(tenant).get()
    assert len(audio) / 2 / 24000 == pytest.approx(job.audio_seconds, abs=0.01)
    assert events[-1]["usage"] == {"input_tokens": len(LONG_TEXT), "output_tokens": 0,
                                   "total_tokens": len(LONG_TEXT)}


@live
def test_sse_of_a_file_only_format_sends_the_whole_file_as_deltas(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))

    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="flac", stream_format="sse",
    ) as response:
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]

    assert events[-1]["type"] == "speech.audio.done"
    flac = b"".join(base64.b64decode(event["audio"]) for event in events[:-1])
    samples, rate = sf.read(io.BytesIO(flac))
    assert len(samples) / rate == pytest.approx(SynthesisJob.objects.for_tenant(tenant).get().audio_seconds, abs=0.01)


@live
def test_sdk_same_idempotency_key_replays_the_first_job(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))
    request = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "mp3",
               "extra_headers": {"Idempotency-Key": "order-7-greeting"}}

    first = client.audio.speech.with_raw_response.create(**request)
    second = client.audio.speech.with_raw_response.create(**request)

    assert second.headers["x-parla-job-id"] == first.headers["x-parla-job-id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert SynthesisJob.objects.for_tenant(tenant).count() == 1
    assert sf.info(io.BytesIO(second.content)).duration > 0.5
    assert UsagePeriod.objects.for_tenant(tenant).get().characters_used == len(TEXT)


@live
def test_sse_replay_with_the_same_idempotency_key_sends_the_stored_audio_as_events(live_server, cpu_worker):
    tenant = TenantFactory()
    request = {
        "url": f"{live_server.url}/v1/audio/speech",
        "json": {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm", "stream_format": "sse"},
        "headers": {"Authorization": f"Bearer {_key(tenant)}", "Idempotency-Key": "sse-once"},
        "timeout": 120,
    }
    first = requests.post(**request, stream=True)
    first_events = _sse_events(first)

    second = requests.post(**request, stream=True)
    second_events = _sse_events(second)

    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Content-Type"] == "text/event-stream"
    assert SynthesisJob.objects.for_tenant(tenant).count() == 1

    def audio(events):
        return b"".join(base64.b64decode(event["audio"]) for event in events if event["type"] == "speech.audio.delta")

    assert audio(second_events) == audio(first_events)
    assert second_events[-1] == first_events[-1]


@live
def test_sdk_raises_server_error_when_the_worker_cannot_render_and_refunds(live_server, cpu_worker):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))
    # A matched voice whose enrollment result is missing: the worker fails the job for good.
    broken = VoiceProfileFactory(tenant=tenant, kind="matched", engine="kokoro", base_voice_id="")

    with pytest.raises(openai.InternalServerError) as raised:
        client.audio.speech.create(model="tts-1", voice={"id": str(broken.pk)}, input=TEXT)

    assert raised.value.status_code == 502
    assert (raised.value.code, raised.value.body["type"]) == ("synthesis_failed", "server_error")
    assert "enrol" in raised.value.message
    assert SynthesisJob.objects.for_tenant(tenant).get().status == "failed"
    period = UsagePeriod.objects.for_tenant(tenant).get()
    assert (period.characters_reserved, period.characters_used) == (0, 0)


@live
def test_sdk_raises_authentication_error_for_a_bad_key(live_server):
    client = _sdk(live_server, "prl_notakey_0000000000000000")

    with pytest.raises(openai.AuthenticationError) as raised:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)

    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert raised.value.body["type"] == "authentication_error"


@live
@pytest.mark.parametrize(
    ("overrides", "code", "param"),
    [
        ({"input": ""}, "validation_error", "input"),
        ({"speed": 3.0}, "validation_error", "speed"),
        ({"voice": "no-such-voice"}, "unknown_voice", "voice"),
        ({"model": "tts-9000"}, "validation_error", "model"),
    ],
)
def test_sdk_raises_bad_request_for_invalid_input(live_server, overrides, code, param):
    tenant = TenantFactory()
    client = _sdk(live_server, _key(tenant))

    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(**{"model": "tts-1", "voice": "alloy", "input": TEXT, **overrides})

    assert raised.value.code == code
    assert raised.value.param == param
    assert raised.value.body["type"] == "invalid_request_error"
    assert raised.value.body["message"]
    assert SynthesisJob.objects.for_tenant(tenant).count() == 0


@live
def test_sdk_raises_rate_limit_error_when_the_quota_is_spent(live_server):
    tenant = TenantFactory(plan=PlanFactory(monthly_characters=10))
    client = _sdk(live_server, _key(tenant))

    with pytest.raises(openai.RateLimitError) as raised:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)

    assert raised.value.code == "quota_exceeded"
    assert raised.value.body["type"] == "insufficient_quota"
    assert int(raised.value.response.headers["retry-after"]) >= 1


# --- In-process: validation, routing and options -------------------------------------------

in_process = pytest.mark.django_db


def _post(client, body: dict, **extra):
    return client.post("/v1/audio/speech", body, format="json", **extra)


def _nothing_charged(tenant) -> bool:
    periods = UsagePeriod.objects.for_tenant(tenant)
    return not SynthesisJob.objects.for_tenant(tenant).exists() and all(
        (period.characters_reserved, period.characters_used) == (0, 0) for period in periods
    )


@pytest.fixture
def no_wait(settings):
    settings.PARLA_SYNC_WAIT_SECONDS = 0.05


@in_process
@pytest.mark.parametrize(
    ("overrides", "param", "fragment"),
    [
        ({"input": ""}, "input", "blank"),
        ({"input": "   "}, "input", "nothing to speak"),
        ({"input": "x" * 4097}, "input", "4096"),
        ({"speed": 3.0}, "speed", "Parla supports speed 0.5 to 2"),
        ({"speed": 0.25}, "speed", "Parla supports speed 0.5 to 2"),
        ({"speed": 4.5}, "speed", "4.0"),
        ({"response_format": "ogg"}, "response_format", "not a valid choice"),
        ({"stream_format": "chunks"}, "stream_format", "not a valid choice"),
        ({"model": "tts-2"}, "model", "Unknown model"),
        ({"voice": {"name": "x"}}, "voice", "voice"),
    ],
)
def test_invalid_request_is_400_in_openai_shape_and_charges_nothing(api_client_for, captured_jobs,
                                                                     overrides, param, fragment):
    tenant = TenantFactory()

    response = _post(api_client_for(tenant), {"model": "tts-1", "voice": "alloy", "input": TEXT, **overrides})

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, "validation_error")
    assert fragment in error["message"]
    assert _nothing_charged(tenant)
    assert captured_jobs() == []


@pytest.mark.parametrize(
    ("code", "status", "error_type"),
    [
        ("invalid_api_key", 401, "authentication_error"),
        ("rate_limited", 429, "rate_limit_error"),
        ("concurrency_limit_exceeded", 429, "rate_limit_error"),
        ("quota_exceeded", 429, "insufficient_quota"),
        ("synthesis_failed", 502, "server_error"),
        ("not_found", 404, "invalid_request_error"),
    ],
)
def test_openai_error_type_follows_status_and_code(code, status, error_type):
    body = openai_error_body({"code": code, "message": "m", "extra": {}}, status)

    assert body == {"error": {"message": "m", "type": error_type, "param": None, "code": code}}


@in_process
@pytest.mark.parametrize("missing", ["model", "input", "voice"])
def test_required_fields_are_named_in_param(api_client_for, captured_jobs, missing):
    tenant = TenantFactory()
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT}
    del body[missing]

    error = _post(api_client_for(tenant), body).json()["error"]

    assert (error["param"], error["code"]) == (missing, "validation_error")
    assert _nothing_charged(tenant)


@in_process
def test_input_over_the_plans_request_limit_is_text_too_long(api_client_for, captured_jobs):
    tenant = TenantFactory(plan=PlanFactory(request_characters=20))

    response = _post(api_client_for(tenant), {"model": "tts-1", "voice": "alloy", "input": TEXT})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "text_too_long"
    assert response.json()["error"]["param"] == "input"
    assert _nothing_charged(tenant)


@in_process
def test_missing_key_is_401_authentication_error(client):
    response = client.post("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": TEXT},
                           content_type="application/json")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@in_process
def test_key_without_the_speech_scope_is_403(api_client_for, captured_jobs):
    tenant = TenantFactory()

    response = _post(api_client_for(tenant, scopes=["usage"]), {"model": "tts-1", "voice": "alloy", "input": TEXT})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert _nothing_charged(tenant)


@in_process
def test_another_tenants_voice_is_an_unknown_voice(api_client_for, captured_jobs):
    mine, theirs = TenantFactory(), TenantFactory()
    profile = VoiceProfileFactory(tenant=theirs)

    response = _post(api_client_for(mine), {"model": "tts-1", "voice": {"id": str(profile.pk)}, "input": TEXT})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_voice"
    assert response.json()["error"]["param"] == "voice"
    assert _nothing_charged(mine)


@in_process
def test_engine_model_refuses_a_voice_of_another_engine(api_client_for, captured_jobs):
    tenant = TenantFactory()

    response = _post(api_client_for(tenant), {"model": "kokoro", "voice": "piper:en_US-joe-medium", "input": TEXT})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "voice"
    assert "piper" in response.json()["error"]["message"]
    assert _nothing_charged(tenant)


@in_process
def test_engine_model_that_is_not_enabled_is_engine_unavailable(api_client_for, captured_jobs):
    tenant = TenantFactory()

    response = _post(api_client_for(tenant), {"model": "xtts", "voice": "alloy", "input": TEXT})

    assert response.status_code == 409
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("engine_unavailable", "model")
    assert _nothing_charged(tenant)


@in_process
def test_wrong_method_and_media_type_answer_in_openai_shape(api_client_for):
    client = api_client_for(TenantFactory())

    wrong_method = client.get("/v1/audio/speech")
    wrong_type = client.post("/v1/audio/speech/", "model=tts-1", content_type="application/x-www-form-urlencoded")

    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    assert (wrong_type.status_code, wrong_type.json()["error"]["code"]) == (415, "unsupported_media_type")


@in_process
def test_quota_exceeded_is_429_insufficient_quota(api_client_for, captured_jobs):
    tenant = TenantFactory(plan=PlanFactory(monthly_characters=10))

    response = _post(api_client_for(tenant), {"model": "tts-1", "voice": "alloy", "input": TEXT})

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "insufficient_quota"
    assert response.json()["error"]["code"] == "quota_exceeded"
    assert "Retry-After" in response
    assert _nothing_charged(tenant)


@in_process
def test_unfinished_job_answers_202_with_the_parla_job(api_client_for, captured_jobs, no_wait):
    tenant = TenantFactory()

    response = _post(api_client_for(tenant), {"model": "tts-1", "voice": "alloy", "input": TEXT})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert response["X-Parla-Job-Id"] == str(body["id"])
    assert response["Location"] == f"/api/v1/jobs/{body['id']}"
    assert captured_jobs() == [body["id"]]


@in_process
@pytest.mark.parametrize(
    ("response_format", "mode", "audio"),
    [
        ("mp3", "stream", {"format": "mp3", "sample_rate": None}),
        ("opus", "stream", {"format": "opus", "sample_rate": None}),
        ("wav", "stream", {"format": "wav", "sample_rate": None}),
        ("pcm", "stream", {"format": "pcm", "sample_rate": 24000, "channels": 1}),
        ("aac", "sync", {"format": "m4a", "sample_rate": None}),
        ("flac", "sync", {"format": "flac", "sample_rate": None}),
    ],
)
def test_response_format_maps_to_parla_audio_and_mode(api_client_for, captured_jobs, no_wait,
                                                      response_format, mode, audio):
    tenant = TenantFactory()

    response = _post(api_client_for(tenant), {"model": "tts-1", "voice": "alloy", "input": TEXT,
                                              "response_format": response_format, "speed": 1.25})

    job = SynthesisJob.objects.for_tenant(tenant).get(pk=response.json()["id"])
    assert job.mode == mode
    assert job.audio_options["speed"] == 1.25
    assert {name: job.audio_options[name] for name in audio} == audio


@in_process
def test_openai_voice_names_follow_the_mapping_setting(api_client_for, captured_jobs, no_wait, settings):
    settings.PARLA_OPENAI_VOICES = {"nova": "kokoro:jf_alpha"}
    client = api_client_for(TenantFactory())

    mapped = _post(client, {"model": "tts-1", "voice": "nova", "input": TEXT}).json()
    unmapped = _post(client, {"model": "tts-1", "voice": "onyx", "input": TEXT}).json()

    assert mapped["voice"] == "kokoro:jf_alpha"
    assert mapped["engine"] == "kokoro"
    assert unmapped["voice"] == settings.PARLA_DEFAULT_VOICE


@in_process
def test_parla_voices_and_engine_models_are_accepted(api_client_for, captured_jobs, no_wait):
    tenant = TenantFactory()
    client = api_client_for(tenant)
    own = VoiceProfileFactory(tenant=tenant)

    by_name = _post(client, {"model": "kokoro", "voice": "jm_kumo", "input": TEXT}).json()
    by_id = _post(client, {"model": "tts-1", "voice": str(own.pk), "input": TEXT}).json()
    by_object = _post(client, {"model": "piper", "voice": {"id": str(own.pk)}, "input": TEXT}).json()

    assert (by_name["voice"], by_name["engine"]) == ("kokoro:jm_kumo", "kokoro")
    assert by_id["voice_profile"] == own.pk
    assert by_object["voice_profile"] == own.pk
