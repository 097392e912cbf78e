from django.conf import settings
from django.db import models

from tenants.scoping import TenantOwnedModel


class VoiceProfile(TenantOwnedModel):
    """A tenant's own voice: a preset over a catalog voice, a clone, or a matched voice.

    Catalog voices themselves are not rows: they come from the installed engines.
    """

    class Kind(models.TextChoices):
        CATALOG = "catalog", "Catalog voice preset"
        CLONED = "cloned", "Cloned"
        MATCHED = "matched", "Matched approximation"

    class Status(models.TextChoices):
        ENROLLING = "enrolling", "Enrolling"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    language = models.CharField(max_length=16, default="en-US")
    gender = models.CharField(max_length=16, blank=True)
    age = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENROLLING)
    # The engine that speaks this voice and, for presets, the catalog voice it builds on.
    engine = models.CharField(max_length=32)
    base_voice_id = models.CharField(max_length=200, blank=True)
    # What enrollment stored beside the profile (speaker latents, a style pack).
    conditioning_path = models.CharField(max_length=300, blank=True)
    conditioning_digest = models.CharField(max_length=64, blank=True)
    # Enrollment's findings: similarity measured, the engine chosen and why, errors.
    enrollment = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Bumped by every enrollment start; only the enrollment of the current generation may
    # write its result here (see voices.enrollment_jobs).
    enrollment_generation = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="voiceprofile_unique_name")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def voice_id(self) -> str:
        """How synthesis names this voice: "<engine>:profile-<id>"."""
        return f"{self.engine}:profile-{self.pk}"


class VoiceReference(TenantOwnedModel):
    """One uploaded recording, stored as a canonical mono 24 kHz WAV under a server-made name."""

    profile = models.ForeignKey(VoiceProfile, on_delete=models.CASCADE, related_name="references")
    storage_path = models.CharField(max_length=300)
    speech_seconds = models.FloatField()
    duration_seconds = models.FloatField()
    sample_rate = models.PositiveIntegerField()
    source_format = models.CharField(max_length=8)
    source_sample_rate = models.PositiveIntegerField()
    source_channels = models.PositiveSmallIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    checksum = models.CharField(max_length=64)
    quality = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"reference {self.pk} of {self.profile_id}"


class VoiceEnrollment(TenantOwnedModel):
    """One start of a voice's enrollment: the work a worker does for it, governed like a job.

    It holds one of the tenant's concurrent-job slots from its start until it ends (exactly
    once: `holds_slot`), counts toward the plan's enrollments a day (rows are never deleted,
    so the count survives the voice), and a newer start of the same voice supersedes it.
    Written only by voices.enrollment_jobs.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded by a newer enrollment"
        CANCELLED = "cancelled", "Cancelled (the voice was deleted)"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SUPERSEDED, Status.CANCELLED)

    # Null once the voice is deleted: the row still counts toward the day and backs the ledger.
    profile = models.ForeignKey(VoiceProfile, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="enrollments")
    generation = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    kind = models.CharField(max_length=16)
    queue_name = models.CharField(max_length=32)
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    holds_slot = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker_id = models.CharField(max_length=200, blank=True)
    processing_seconds = models.FloatField(default=0.0, help_text="Worker time over every attempt.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile", "generation"], name="voiceenrollment_unique_generation"),
            # The database's own guarantee that two enrollments of one voice never run at once.
            models.UniqueConstraint(fields=["profile"], condition=models.Q(status="running"),
                                    name="voiceenrollment_one_running"),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="voiceenrollment_tenant_created"),
            models.Index(fields=["status"], condition=models.Q(status__in=["queued", "running"]),
                         name="voiceenrollment_unfinished"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"enrollment {self.generation} of {self.voice_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED
