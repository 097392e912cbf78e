from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batches.models import Batch, WebhookDelivery
from synthesis.api.serializers import AudioOptionsSerializer, StrictCharField
from synthesis.models import SynthesisJob


class BatchItemInputSerializer(serializers.Serializer):
    text = StrictCharField(required=False, trim_whitespace=False)
    ssml = StrictCharField(required=False, trim_whitespace=False)
    voice = StrictCharField(required=False, max_length=200, help_text="Overrides the batch's voice for this item.")
    filename = StrictCharField(required=False, max_length=255, help_text="File name in the export (no folders).")


@extend_schema_field(BatchItemInputSerializer(many=True))
class ItemsField(serializers.JSONField):
    """Checked item by item by batches.parsing, so that errors can name the item."""


class BatchCreateInputSerializer(AudioOptionsSerializer):
    """JSON with `items`, or multipart with `file` (TXT, CSV, Markdown or DOCX) and the same fields."""

    items = ItemsField(required=False, help_text="The texts (objects, or plain strings); or upload a file "
                                                 "instead (multipart).")
    file = serializers.FileField(required=False, help_text="TXT: a line an item. CSV: columns text (or ssml), "
                                 "optional voice and filename. Markdown: a paragraph an item. "
                                 "DOCX: a paragraph an item.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    voice = serializers.CharField(required=False, allow_blank=True, max_length=200, default="",
                                  help_text="Default voice of the items (catalog id or name, or your voice's id).")
    language = serializers.CharField(required=False, max_length=16)
    normalize = serializers.BooleanField(default=True)
    webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=2000, default="",
                                       help_text="Receives a signed event when the batch ends (else the tenant's).")

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if ("items" in self.initial_data) == ("file" in attrs):
            raise serializers.ValidationError({"items": ["Send items (JSON) or a file (multipart), one of them."]})
        return attrs


class BatchProgressSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Items per status.")
    done = serializers.IntegerField()
    percent = serializers.FloatField()
    eta_seconds = serializers.FloatField(allow_null=True, help_text="From the rate observed so far.")
    characters_done = serializers.IntegerField()
    audio_seconds = serializers.FloatField()


class BatchOutputSerializer(serializers.ModelSerializer):
    voice = serializers.CharField(source="voice_id")
    progress = serializers.SerializerMethodField()
    export = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = ["id", "name", "status", "voice", "options", "source_filename", "webhook_url", "items_total",
                  "characters_total", "progress", "export", "created_at", "started_at", "finished_at",
                  "cancel_requested_at"]
        read_only_fields = fields

    def get_progress(self, batch: Batch) -> dict:
        from batches.services import batch_progress

        return BatchProgressSerializer(batch_progress(tenant=batch.tenant_id, batch=batch)).data

    def get_export(self, batch: Batch) -> dict:
        ready = batch.export_status == Batch.ExportStatus.READY
        return {
            "status": batch.export_status,
            "url": f"/api/v1/batches/{batch.pk}/export" if ready else None,
            "size_bytes": batch.export_size if ready else None,
            "error": batch.export_error or None,
        }


class BatchItemOutputSerializer(serializers.ModelSerializer):
    index = serializers.SerializerMethodField()
    job = serializers.IntegerField(source="pk")
    voice = serializers.CharField(source="voice_id")
    error = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()

    class Meta:
        model = SynthesisJob
        fields = ["index", "job", "status", "text", "ssml", "voice", "filename", "characters", "attempts",
                  "audio_seconds", "error", "audio_url", "started_at", "finished_at"]
        read_only_fields = fields

    def get_index(self, job: SynthesisJob) -> int:
        return job.batch_index + 1

    def get_error(self, job: SynthesisJob) -> dict | None:
        return {"code": job.error_code, "message": job.error_message} if job.error_code else None

    def get_audio_url(self, job: SynthesisJob) -> str | None:
        return f"/api/v1/jobs/{job.pk}/audio" if job.audio_available else None


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "event", "url", "status", "attempts", "last_status_code", "last_error", "created_at",
                  "last_attempt_at", "delivered_at", "payload"]
        read_only_fields = fields
