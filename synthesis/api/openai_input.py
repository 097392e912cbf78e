"""The request of POST /v1/audio/speech: OpenAI's body as a serializer, and the Parla voice
that its `voice` and `model` name (see synthesis.api.openai for the endpoint)."""

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from synthesis.audio import AudioOptions
from synthesis.audio.options import SPEED_RANGE
from synthesis.engines.registry import ENGINE_CLASSES, engine_get
from synthesis.errors import EngineUnavailable, UnknownVoice
from synthesis.selectors import ResolvedVoice, speech_voice_resolve
from tenants.errors import ApplicationError
from tenants.models import Tenant

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
                 "marin", "cedar")
OPENAI_MAX_INPUT = 4096
OPENAI_SPEED_RANGE = (0.25, 4.0)
# OpenAI's response_format → Parla's format. OpenAI's aac is served as AAC in MP4 (m4a).
FORMATS = {"mp3": "mp3", "opus": "opus", "aac": "m4a", "flac": "flac", "wav": "wav", "pcm": "pcm"}
# OpenAI's pcm is raw 24 kHz 16-bit little-endian mono; a raw stream cannot say its own rate.
PCM_SAMPLE_RATE = 24_000


@extend_schema_field({
    "oneOf": [
        {"type": "string"},
        {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    ],
})
class OpenAIVoiceField(serializers.Field):
    """A voice name, or OpenAI's custom-voice object {"id": ...} (one of your voice ids)."""

    # Doubled braces: DRF formats these messages with str.format().
    default_error_messages = {"invalid": 'Give a voice name or an object {{"id": "<voice id>"}}.'}

    def to_internal_value(self, data) -> tuple[str, bool]:
        custom = isinstance(data, dict)
        if custom:
            if set(data) != {"id"}:
                self.fail("invalid")
            data = data["id"]
        if not isinstance(data, str) or not data.strip() or len(data) > 200:
            self.fail("invalid")
        return data.strip(), custom

    def to_representation(self, value):
        return value


class OpenAISpeechInputSerializer(serializers.Serializer):
    """The body of POST /v1/audio/speech, as OpenAI defines it. Other fields are ignored."""

    model = serializers.CharField(
        max_length=64,
        help_text="tts-1, tts-1-hd or gpt-4o-mini-tts (all served by the voice's engine), or an engine name "
                  "(piper, kokoro...): then the voice must be one of that engine's.")
    input = serializers.CharField(max_length=OPENAI_MAX_INPUT, trim_whitespace=False,
                                  help_text="The text to speak: at most 4096 characters and the plan's per-request "
                                            "limit.")
    voice = OpenAIVoiceField(
        help_text="An OpenAI voice name (alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse, "
                  "marin, cedar) mapped by PARLA_OPENAI_VOICES, else the default voice; or a Parla voice: a catalog "
                  'id or name ("piper:en_US-joe-medium") or one of your voice ids, also as {"id": "12"}.')
    response_format = serializers.ChoiceField(choices=list(FORMATS), default="mp3", allow_null=True,
                                              help_text="aac is AAC in an MP4 (m4a) file; pcm is raw 24 kHz "
                                                        "16-bit little-endian mono.")
    speed = serializers.FloatField(default=1.0, allow_null=True, min_value=OPENAI_SPEED_RANGE[0],
                                   max_value=OPENAI_SPEED_RANGE[1],
                                   help_text=f"Parla supports {SPEED_RANGE[0]:g} to {SPEED_RANGE[1]:g}.")
    instructions = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False,
                                         help_text="Accepted and ignored: Parla's engines take no style prompt.")
    stream_format = serializers.ChoiceField(choices=["audio", "sse"], default="audio", allow_null=True,
                                            help_text="audio: the audio bytes; sse: Server-Sent Events.")

    def validate_model(self, value: str) -> str:
        name = value.strip()
        if name in OPENAI_MODELS or name.startswith("gpt-4o-mini-tts-") or name in ENGINE_CLASSES:
            return name
        engines = ", ".join(settings.PARLA_ENGINES)
        raise serializers.ValidationError(
            f"Unknown model {name!r}; use {', '.join(OPENAI_MODELS)} or an engine name ({engines})."
        )

    def validate_input(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The input has nothing to speak.")
        return value

    def validate_speed(self, value: float | None) -> float:
        if value is None:
            return 1.0
        low, high = SPEED_RANGE
        if not low <= value <= high:
            raise serializers.ValidationError(
                f"Parla supports speed {low:g} to {high:g}; {value:g} is outside it "
                f"(OpenAI's {OPENAI_SPEED_RANGE[0]:g} to {OPENAI_SPEED_RANGE[1]:g} is not all available)."
            )
        return value

    def validate(self, attrs):
        attrs["response_format"] = attrs.get("response_format") or "mp3"
        attrs["stream_format"] = attrs.get("stream_format") or "audio"
        return attrs

    def audio_options(self) -> AudioOptions:
        values = self.validated_data
        fmt = FORMATS[values["response_format"]]
        return AudioOptions.from_request({
            "format": fmt,
            "speed": values["speed"],
            "sample_rate": PCM_SAMPLE_RATE if fmt == "pcm" else None,
        })


def _not_this_engine(message: str) -> ApplicationError:
    return ApplicationError(message, extra={"fields": {"voice": [message]}})


def openai_voice_resolve(*, tenant: Tenant, voice: str, custom: bool, model: str) -> ResolvedVoice:
    """The voice an OpenAI request names: a mapped OpenAI name, or a Parla voice of the tenant."""
    engine = model if model in ENGINE_CLASSES else None
    if engine is not None:
        try:
            engine_get(engine)
        except EngineUnavailable as exc:
            raise EngineUnavailable(exc.message, extra={**exc.extra, "fields": {"model": [exc.message]}}) from None
    if not custom and voice.lower() in OPENAI_VOICES:
        mapping = {name.lower(): target for name, target in settings.PARLA_OPENAI_VOICES.items()}
        target = mapping.get(voice.lower()) or settings.PARLA_DEFAULT_VOICE
        resolved = speech_voice_resolve(tenant=tenant, voice=target)
        if engine is not None and resolved.engine != engine:
            raise _not_this_engine(
                f"The voice {voice!r} speaks with {resolved.voice_id} ({resolved.engine}), not the {engine} engine "
                f"the model names; name one of {engine}'s voices, or map {voice!r} in PARLA_OPENAI_VOICES."
            )
        return resolved
    try:
        resolved = speech_voice_resolve(tenant=tenant, voice=voice)
    except UnknownVoice:
        if engine is None or ":" in voice:
            raise
        # A bare name two engines share is unambiguous once the model names the engine.
        resolved = speech_voice_resolve(tenant=tenant, voice=f"{engine}:{voice}")
    if engine is not None and resolved.engine != engine:
        raise _not_this_engine(f"The voice {voice!r} belongs to the {resolved.engine} engine, not {engine}.")
    return resolved
