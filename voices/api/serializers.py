from rest_framework import serializers

from voices.models import VoiceProfile, VoiceReference
from voices.selectors import engine_licence


class VoiceListOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='Catalog voices: "<engine>:<voice>"; own voices: their number.')
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["catalog", "cloned", "matched"])
    engine = serializers.CharField()
    language = serializers.CharField()
    licence = serializers.CharField()
    commercial_use = serializers.BooleanField(help_text="False for non-commercial licences (XTTS-v2, MMS-TTS).")
    status = serializers.CharField()
    description = serializers.CharField()
    own = serializers.BooleanField()
    created_at = serializers.DateTimeField(allow_null=True)


class VoiceReferenceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = VoiceReference
        fields = ["id", "speech_seconds", "duration_seconds", "sample_rate", "source_format",
                  "source_sample_rate", "source_channels", "size_bytes", "checksum", "quality", "created_at"]
        read_only_fields = fields


class VoiceProfileOutputSerializer(serializers.ModelSerializer):
    references = VoiceReferenceOutputSerializer(many=True, read_only=True)
    licence = serializers.SerializerMethodField()
    commercial_use = serializers.SerializerMethodField()
    engine_label = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField(
        help_text="Enrollment progress from 0 to 1 (1 once ready); details in `enrollment.stage`."
    )

    class Meta:
        model = VoiceProfile
        fields = ["id", "name", "description", "language", "gender", "age", "kind", "status", "engine",
                  "engine_label", "base_voice_id", "licence", "commercial_use", "enrollment", "progress",
                  "error", "references", "created_at", "updated_at"]
        read_only_fields = fields

    def get_licence(self, profile: VoiceProfile) -> str:
        licence = engine_licence(profile.engine)
        return licence.name if licence else ""

    def get_commercial_use(self, profile: VoiceProfile) -> bool:
        licence = engine_licence(profile.engine)
        return bool(licence and licence.commercial_use)

    def get_progress(self, profile: VoiceProfile) -> float:
        if profile.status == VoiceProfile.Status.READY:
            return 1.0
        return float((profile.enrollment or {}).get("progress", 0.0))

    def get_engine_label(self, profile: VoiceProfile) -> str:
        """What the tenant is told about how this voice is made."""
        licence = engine_licence(profile.engine)
        note = "" if licence is None or licence.commercial_use else f" ({licence.name}: non-commercial)"
        if profile.kind == VoiceProfile.Kind.CLONED:
            return f"cloned with {profile.engine.upper()}{note}"
        if profile.kind == VoiceProfile.Kind.MATCHED:
            return f"matched approximation with {profile.engine}{note}"
        return f"preset of {profile.base_voice_id}{note}"


class VoiceCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    language = serializers.CharField(max_length=16, default="en-US")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    gender = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    age = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    engine = serializers.CharField(max_length=32, default="auto")
    base_voice_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    references = serializers.ListField(child=serializers.FileField(), required=False, default=list)


class VoiceUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    language = serializers.CharField(max_length=16, required=False)
    gender = serializers.CharField(max_length=16, required=False, allow_blank=True)
    age = serializers.CharField(max_length=16, required=False, allow_blank=True)


class VoiceReferencesInputSerializer(serializers.Serializer):
    references = serializers.ListField(child=serializers.FileField(), allow_empty=False)
