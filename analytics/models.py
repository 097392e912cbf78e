"""The usage ledger and what is built from it.

- UsageRecord: one row per finished job (what was billed), written in the transaction that
  settles the job's quota. UsageFailure: one row each time a job fails (no charge).
  EnrollmentUsage: one row per voice enrollment a worker ran (processing seconds, no
  characters). All are append-only: the application never updates or deletes them.
- UsageDaily: per tenant, per day in the tenant's time zone, per voice, engine and API key,
  the sums of the ledger. Built incrementally (see analytics.rollups) and rebuildable.
- UsageRollupPending: ledger rows not yet added to UsageDaily, written in the same transaction
  as the ledger row and deleted in the same transaction that adds it to the rollups; reports
  add these rows on top of the rollups, so they are exact at once.
"""

from django.conf import settings
from django.db import models

from tenants.scoping import TenantOwnedModel, TenantQuerySet


class LedgerAppendOnly(Exception):
    """Raised on any attempt to change or remove a ledger row through the application."""


class LedgerQuerySet(TenantQuerySet):
    def update(self, **kwargs):
        raise LedgerAppendOnly(f"{self.model.__name__} rows are never updated.")

    def delete(self):
        raise LedgerAppendOnly(f"{self.model.__name__} rows are never deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise LedgerAppendOnly(f"{self.model.__name__} rows are never updated.")

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        raise LedgerAppendOnly(f"{self.model.__name__} rows are never updated.")


class LedgerModel(TenantOwnedModel):
    """Rows that are written once. save() inserts only; delete() refuses."""

    objects = LedgerQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerAppendOnly(f"{type(self).__name__} rows are never updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerAppendOnly(f"{type(self).__name__} rows are never deleted.")


class UsageRecord(LedgerModel):
    """The append-only usage ledger: one row per finished job, never updated or deleted.

    The only change a row can see is a reference set to null by the database when a user is
    deleted (api keys are revoked, never deleted).
    """

    job = models.OneToOneField("synthesis.SynthesisJob", on_delete=models.PROTECT, related_name="usage")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The dashboard member who made the job (jobs made with an API key have none).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    batch = models.ForeignKey("batches.Batch", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    model_version = models.CharField(max_length=200, blank=True)
    mode = models.CharField(max_length=16)
    characters = models.PositiveIntegerField(help_text="Characters of the input.")
    characters_billed = models.PositiveIntegerField(help_text="Characters charged (0 for cached audio).")
    audio_seconds = models.FloatField()
    cached = models.BooleanField()
    processing_seconds = models.FloatField()
    gpu_seconds = models.FloatField(null=True, blank=True, help_text="Processing time on a GPU; empty on a CPU.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usage_tenant_created"),
            models.Index(fields=["created_at"], name="usage_created"),
        ]

    def __str__(self) -> str:
        return f"usage of job {self.job_id}: {self.characters_billed} chars"


class UsageFailure(LedgerModel):
    """One failed run of a job: nothing was charged, but tenants and operators count errors.

    A batch item that fails, is retried and fails again has two rows.
    """

    job = models.ForeignKey("synthesis.SynthesisJob", on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    mode = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usagefailure_tenant_created"),
            models.Index(fields=["created_at"], name="usagefailure_created"),
        ]

    def __str__(self) -> str:
        return f"failure of job {self.job_id} ({self.error_code})"


class EnrollmentUsage(LedgerModel):
    """One voice enrollment that ran on a worker: its own kind of usage, never billed as
    characters. Written in the transaction that ends the enrollment (voices announces it; see
    analytics.apps), so one enrollment has at most one row. Enrollments superseded before a
    worker took them did no work and have none (they still count toward the day's limit)."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded while running"
        CANCELLED = "cancelled", "Voice deleted while running"

    enrollment = models.OneToOneField("voices.VoiceEnrollment", on_delete=models.PROTECT, related_name="usage")
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, help_text="cloned or matched.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    attempts = models.PositiveSmallIntegerField()
    processing_seconds = models.FloatField(help_text="Worker time over every attempt.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="enrollusage_tenant_created"),
            models.Index(fields=["created_at"], name="enrollusage_created"),
        ]

    def __str__(self) -> str:
        return f"enrollment {self.enrollment_id}: {self.outcome}, {self.processing_seconds:.1f} s"


class UsageDaily(TenantOwnedModel):
    """Sums of the ledger per tenant, local day, voice, engine and API key (null: dashboard)."""

    day = models.DateField(help_text="The day in the tenant's time zone.")
    voice_id = models.CharField(max_length=200)
    engine = models.CharField(max_length=32)
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    requests = models.PositiveBigIntegerField(default=0)
    characters = models.PositiveBigIntegerField(default=0)
    characters_billed = models.PositiveBigIntegerField(default=0)
    audio_seconds = models.FloatField(default=0)
    processing_seconds = models.FloatField(default=0)
    cached_requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)

    class Meta:
        # One row per bucket; jobs without a key (api_key null) have a bucket of their own.
        # Two partial indexes rather than NULLS NOT DISTINCT, which SQLite lacks.
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day", "voice_id", "engine", "api_key"],
                                    condition=models.Q(api_key__isnull=False), name="usagedaily_unique_bucket"),
            models.UniqueConstraint(fields=["tenant", "day", "voice_id", "engine"],
                                    condition=models.Q(api_key__isnull=True), name="usagedaily_unique_bucket_nokey"),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="usagedaily_tenant_day")]
        verbose_name_plural = "usage daily rollups"

    def __str__(self) -> str:
        return f"{self.day} {self.voice_id} {self.requests} requests"


class UsageRollupPending(TenantOwnedModel):
    """A ledger row (a record or a failure) not yet added to UsageDaily."""

    record = models.OneToOneField(UsageRecord, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    failure = models.OneToOneField(UsageFailure, on_delete=models.CASCADE, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(record__isnull=False) ^ models.Q(failure__isnull=False),
                                   name="usagerolluppending_one_row"),
        ]


class UsageRollupState(TenantOwnedModel):
    """Per tenant: the lock rollup runs take, and the time zone the rollups were built in."""

    time_zone = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="usagerollupstate_unique")]
