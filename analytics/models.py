from django.db import models

from tenants.scoping import TenantOwnedModel


class UsageRecord(TenantOwnedModel):
    """The append-only usage ledger: one row per finished job, never updated or deleted."""

    job = models.OneToOneField("synthesis.SynthesisJob", on_delete=models.PROTECT, related_name="usage")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    mode = models.CharField(max_length=16)
    characters = models.PositiveIntegerField(help_text="Characters of the input.")
    characters_billed = models.PositiveIntegerField(help_text="Characters charged (0 for cached audio).")
    audio_seconds = models.FloatField()
    cached = models.BooleanField()
    processing_seconds = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"], name="usage_tenant_created")]

    def __str__(self) -> str:
        return f"usage of job {self.job_id}: {self.characters_billed} chars"
