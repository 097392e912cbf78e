from rest_framework import serializers

from synthesis.audio import FORMATS, SAMPLE_RATES, AudioOptions
from synthesis.audio.options import (
    BITRATE_RANGE_KBPS,
    LOUDNESS_RANGE_LUFS,
    PITCH_RANGE_SEMITONES,
    SPEED_RANGE,
    TRUE_PEAK_RANGE_DBTP,
    VOLUME_RANGE_DB,
    WAV_SUBTYPES,
)
from synthesis.errors import InvalidAudioOptions
from synthesis.models import SynthesisJob

# API field → AudioOptions field.
AUDIO_FIELDS = {
    "format": "format",
    "sample_rate": "sample_rate",
    "channels": "channels",
    "bitrate": "bitrate_kbps",
    "speed": "speed",
    "pitch": "pitch_semitones",
    "volume": "volume_db",
    "loudness": "loudness_lufs",
    "true_peak": "true_peak_dbtp",
    "wav_subtype": "wav_subtype",
    "trim_silence": "trim_silence",
}
_API_NAME = {internal: api for api, internal in AUDIO_FIELDS.items()}


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: 42 or true is an error, not "42" or "True"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class AudioOptionsSerializer(serializers.Serializer):
    """The output format and sound, shared by speech, jobs and batches."""

    format = serializers.ChoiceField(choices=FORMATS, default="wav")
    sample_rate = serializers.ChoiceField(choices=SAMPLE_RATES, required=False, allow_null=True,
                                          help_text="Hz; default: the voice's own rate.")
    channels = serializers.ChoiceField(choices=[1, 2], required=False)
    bitrate = serializers.IntegerField(required=False, allow_null=True, min_value=BITRATE_RANGE_KBPS[0],
                                       max_value=BITRATE_RANGE_KBPS[1], help_text="kbit/s, lossy formats only.")
    speed = serializers.FloatField(required=False, min_value=SPEED_RANGE[0], max_value=SPEED_RANGE[1])
    pitch = serializers.FloatField(required=False, min_value=PITCH_RANGE_SEMITONES[0],
                                   max_value=PITCH_RANGE_SEMITONES[1], help_text="Semitones.")
    volume = serializers.FloatField(required=False, min_value=VOLUME_RANGE_DB[0], max_value=VOLUME_RANGE_DB[1],
                                    help_text="Gain in dB.")
    loudness = serializers.FloatField(required=False, allow_null=True, min_value=LOUDNESS_RANGE_LUFS[0],
                                      max_value=LOUDNESS_RANGE_LUFS[1], help_text="Target integrated loudness, LUFS.")
    true_peak = serializers.FloatField(required=False, min_value=TRUE_PEAK_RANGE_DBTP[0],
                                       max_value=TRUE_PEAK_RANGE_DBTP[1], help_text="Ceiling in dBTP.")
    wav_subtype = serializers.ChoiceField(choices=WAV_SUBTYPES, required=False)
    trim_silence = serializers.BooleanField(required=False)

    def audio_options(self) -> AudioOptions:
        """Strict audio options from the raw body (numbers must be JSON numbers)."""
        raw = {AUDIO_FIELDS[name]: value for name, value in self.initial_data.items() if name in AUDIO_FIELDS}
        try:
            return AudioOptions.from_request(raw)
        except InvalidAudioOptions as exc:
            fields = exc.extra.get("fields", {})
            exc.extra = {**exc.extra, "fields": {_API_NAME.get(k, k): v for k, v in fields.items()}}
            raise

    def audio_options_from_form(self) -> AudioOptions:
        """From validated form fields (multipart uploads carry numbers as text)."""
        values = {AUDIO_FIELDS[name]: value for name, value in self.validated_data.items() if name in AUDIO_FIELDS}
        try:
            return AudioOptions(**values)
        except InvalidAudioOptions as exc:
            fields = exc.extra.get("fields", {})
            exc.extra = {**exc.extra, "fields": {_API_NAME.get(k, k): v for k, v in fields.items()}}
            raise


class SpeechInputSerializer(AudioOptionsSerializer):
    """The body of POST /api/v1/speech, /api/v1/speech/stream and /api/v1/jobs."""

    text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False,
                                 help_text="Plain text to speak. Give text or ssml, not both.")
    ssml = StrictCharField(required=False, allow_blank=True, trim_whitespace=False,
                                 help_text="An SSML document (<speak> root; the supported subset is in the docs).")
    voice = StrictCharField(required=False, max_length=200, default="",
                                  help_text='A catalog voice ("piper:en_US-joe-medium" or its bare name) or the '
                                            "id of one of your voices. Default: the installation's default voice.")
    language = StrictCharField(required=False, max_length=16, help_text="BCP-47; defaults to the voice's.")
    normalize = serializers.BooleanField(default=True,
                                         help_text="Speak numbers, dates, currency, units and abbreviations as words.")
    fallback = serializers.BooleanField(
        default=False,
        help_text="If the voice needs a GPU and no GPU worker is running, speak with the default voice instead "
                  "of waiting (the response names the engine that served it).")
    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if ("text" in attrs) == ("ssml" in attrs):
            raise serializers.ValidationError({"text": ["Give either text or ssml (exactly one)."]})
        return attrs

class JobOutputSerializer(serializers.ModelSerializer):
    voice = StrictCharField(source="voice_id")
    voice_profile = serializers.IntegerField(source="voice_profile_id", allow_null=True)
    requested_voice = serializers.CharField(source="requested_voice_id")
    queue = serializers.CharField(source="queue_name")
    waiting_for = serializers.SerializerMethodField(help_text='"worker" while no running worker serves its queue.')
    error = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()
    audio_available = serializers.BooleanField()

    class Meta:
        model = SynthesisJob
        fields = ["id", "status", "mode", "voice", "voice_profile", "engine", "fallback_used", "requested_voice",
                  "queue", "waiting_for", "characters", "format", "content_type", "sample_rate", "audio_seconds",
                  "size_bytes", "cache_hit", "processing_seconds", "attempts", "error", "audio_available",
                  "audio_url", "audio_deleted_at", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_waiting_for(self, job: SynthesisJob) -> str | None:
        from synthesis.jobs import waiting_for_worker

        if waiting_for_worker(job):
            return "gpu_worker" if job.queue_name.endswith("gpu") else "worker"
        return None

    def get_error(self, job: SynthesisJob) -> dict | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def get_audio_url(self, job: SynthesisJob) -> str | None:
        return f"/api/v1/jobs/{job.pk}/audio" if job.audio_available else None


class JobListFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SynthesisJob.Status.choices, required=False)
    voice = StrictCharField(required=False, max_length=200)
    created_after = serializers.DateTimeField(required=False, input_formats=["iso-8601", "%Y-%m-%d"])
    created_before = serializers.DateTimeField(required=False, input_formats=["iso-8601", "%Y-%m-%d"])
