from django.conf import settings
from django.db import models

from tenants.scoping import TenantOwnedModel


class CachedAudio(TenantOwnedModel):
    """Audio already rendered for an identical request of this tenant (see synthesis.cache)."""

    key = models.CharField(max_length=64)
    storage_path = models.CharField(max_length=300)
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    model_version = models.CharField(max_length=200)
    format = models.CharField(max_length=8)
    content_type = models.CharField(max_length=64)
    sample_rate = models.PositiveIntegerField()
    duration_seconds = models.FloatField()
    size_bytes = models.PositiveBigIntegerField()
    hits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_hit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="cachedaudio_unique_key")]
        indexes = [models.Index(fields=["tenant", "last_hit_at"], name="cachedaudio_tenant_hit")]

    def __str__(self) -> str:
        return f"{self.voice_id} {self.format} ({self.duration_seconds:.1f} s)"


class SynthesisJob(TenantOwnedModel):
    """One piece of synthesis work. Every API call that makes audio is a job row first.

    The web tier writes the row (with the quota held and a job slot taken) and enqueues its
    id; a worker renders it, stores the audio under a key derived from the id, settles the
    quota and writes one usage record. The row is the source of truth: a lost message or a
    dead worker is recovered from rows that say they are unfinished.
    """

    class Mode(models.TextChoices):
        SYNC = "sync", "Synchronous request"
        STREAM = "stream", "Streaming request"
        ASYNC = "async", "Asynchronous job"
        PREVIEW = "preview", "Voice preview"
        BATCH = "batch", "Batch item"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    mode = models.CharField(max_length=16, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The dashboard member who made the job (jobs made with an API key have none).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    voice_profile = models.ForeignKey(
        "voices.VoiceProfile", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Batch items: their batch, place in the input and file name in the export.
    batch = models.ForeignKey("batches.Batch", on_delete=models.CASCADE, null=True, blank=True, related_name="items")
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    filename = models.CharField(max_length=255, blank=True)
    # The voice as synthesis names it ("piper:en_US-joe-medium", "kokoro:profile-7") and
    # the engine serving it; with a fallback, the voice that was asked for.
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    requested_voice_id = models.CharField(max_length=200, blank=True)
    fallback_used = models.BooleanField(default=False)
    queue_name = models.CharField(max_length=32)
    # Input, exactly as received, and how to read it.
    text = models.TextField(blank=True)
    ssml = models.TextField(blank=True)
    language = models.CharField(max_length=16, default="en")
    normalize = models.BooleanField(default=True)
    audio_options = models.JSONField(default=dict)
    characters = models.PositiveIntegerField(help_text="Billable characters of the input.")
    reservation = models.ForeignKey(
        "tenants.QuotaReservation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    holds_slot = models.BooleanField(default=False, help_text="Holds one of the plan's concurrent-job slots.")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Times a worker process died while running it (killed, out of memory, a crash in native
    # code). Such a job runs alone on its retry, and is failed once it has killed too many.
    worker_deaths = models.PositiveSmallIntegerField(default=0)
    # The plan's audio length limit when it was created; the worker stops a render past it.
    audio_seconds_limit = models.PositiveIntegerField(null=True, blank=True)
    # The worker process running it (see config.runtime.presence): a running job whose
    # worker has stopped sending heartbeats is taken over.
    worker_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # Result.
    storage_path = models.CharField(max_length=300, blank=True)
    format = models.CharField(max_length=8, blank=True)
    content_type = models.CharField(max_length=80, blank=True)
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    audio_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    cache_hit = models.BooleanField(default=False)
    processing_seconds = models.FloatField(null=True, blank=True)
    model_version = models.CharField(max_length=200, blank=True)
    audio_deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="job_tenant_created"),
            models.Index(fields=["status", "created_at"], name="job_status_created"),
            models.Index(fields=["batch", "status"], name="job_batch_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["batch", "batch_index"], name="job_unique_batch_index"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def audio_available(self) -> bool:
        return self.status == self.Status.SUCCEEDED and bool(self.storage_path) and self.audio_deleted_at is None
