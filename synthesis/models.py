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
