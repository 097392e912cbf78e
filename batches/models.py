from django.db import models

from tenants.scoping import TenantOwnedModel


class Batch(TenantOwnedModel):
    """Many texts with shared settings. Its items are SynthesisJob rows (mode "batch").

    The whole batch's characters are held as one quota reservation when it is created and
    settled once, when it ends, with what its items really used; the batch holds one of the
    plan's concurrent-job slots while it runs.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.COMPLETED, Status.COMPLETED_WITH_ERRORS, Status.FAILED, Status.CANCELLED)

    class ExportStatus(models.TextChoices):
        NONE = "none", "Not started"
        PENDING = "pending", "Being written"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED)
    api_key = models.ForeignKey("tenants.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Shared settings of the items: default voice, language, normalisation, audio options.
    voice_id = models.CharField(max_length=200)
    options = models.JSONField(default=dict)
    source_filename = models.CharField(max_length=255, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True)
    items_total = models.PositiveIntegerField()
    characters_total = models.PositiveIntegerField()
    reservation = models.ForeignKey(
        "tenants.QuotaReservation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    holds_slot = models.BooleanField(default=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    export_status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.NONE)
    export_path = models.CharField(max_length=300, blank=True)
    export_size = models.PositiveBigIntegerField(null=True, blank=True)
    export_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"], name="batch_tenant_created")]

    def __str__(self) -> str:
        return self.name or f"batch {self.pk}"

    @property
    def finished(self) -> bool:
        return self.status in self.TERMINAL


class WebhookDelivery(TenantOwnedModel):
    """One event POSTed to a tenant's URL, signed, with its attempts (the delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks")
    event = models.CharField(max_length=64)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"
