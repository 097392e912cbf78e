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
