import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwnedModel


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.", code="invalid")


class User(AbstractUser):
    email = models.EmailField("email address", unique=True, blank=True, null=True)


class Plan(models.Model):
    """Limits a tenant works within. Global: plans are shared by tenants."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    monthly_characters = models.PositiveBigIntegerField(validators=[MinValueValidator(0)])
    requests_per_minute = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    concurrent_jobs = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    voices = models.PositiveIntegerField(help_text="Own voice profiles per tenant.")
    cloned_voices = models.PositiveIntegerField(help_text="Cloned or matched voices per tenant.")
    batch_items = models.PositiveIntegerField(help_text="Items in one batch.")
    upload_bytes = models.PositiveBigIntegerField(help_text="Largest reference upload.")
    references_per_voice = models.PositiveIntegerField(
        default=5, help_text="Reference recordings per voice."
    )
    request_characters = models.PositiveIntegerField(
        default=100_000, help_text="Longest text accepted in one request."
    )
    # Pauses cost no characters, so characters alone do not bound a request's work.
    max_audio_seconds_per_request = models.PositiveIntegerField(
        default=3_600, validators=[MinValueValidator(1)],
        help_text="Longest audio one request may produce, pauses included (seconds).",
    )
    enrollments_per_day = models.PositiveIntegerField(
        default=20, help_text="Voice enrollments a tenant may start per day (UTC)."
    )
    # Prices for the usage reports' cost estimate; no price, no estimate.
    price_per_million_characters = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Price of one million billed characters, for cost estimates.",
    )
    currency = models.CharField(max_length=3, null=True, blank=True, help_text="ISO 4217 code, e.g. EUR.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["monthly_characters", "slug"]

    def __str__(self) -> str:
        return self.name

    LIMIT_FIELDS = (
        "monthly_characters",
        "requests_per_minute",
        "concurrent_jobs",
        "voices",
        "cloned_voices",
        "batch_items",
        "upload_bytes",
        "references_per_voice",
        "request_characters",
        "max_audio_seconds_per_request",
        "enrollments_per_day",
    )

    def limits(self) -> dict[str, int]:
        return {field: getattr(self, field) for field in self.LIMIT_FIELDS}


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Signs outgoing webhooks (HMAC-SHA256); rotatable by the tenant.
    webhook_secret = models.CharField(max_length=128)
    # Where batch events go when a batch names no URL of its own.
    webhook_url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Membership(TenantOwnedModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class ApiKey(TenantOwnedModel):
    """An API credential. Only the SHA-256 of the secret is stored; the key is shown once."""

    class Scope(models.TextChoices):
        SPEECH = "speech", "Synthesize speech and read jobs"
        VOICES = "voices", "Manage voices"
        BATCHES = "batches", "Manage batches"
        USAGE = "usage", "Read usage and tenant details"
        KEYS = "keys", "Manage API keys"
        # Tenant settings that redirect data or money (the webhook receiver and its secret).
        ADMIN = "admin", "Manage tenant settings (webhooks)"

    name = models.CharField(max_length=100)
    # The visible start of the key (e.g. "prl_Ab12Cd34"), unique, used to find the row.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="apikey_unique_name")
        ]
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuditEvent(TenantOwnedModel):
    """Who did what to which object, from where. Append-only."""

    action = models.CharField(max_length=64, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"


class UsagePeriod(TenantOwnedModel):
    """Characters used and held for one tenant in one billing month (tenant's time zone)."""

    period_start = models.DateField()
    characters_used = models.PositiveBigIntegerField(default=0)
    characters_reserved = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "period_start"], name="usageperiod_unique")
        ]
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"{self.period_start:%Y-%m}"


class QuotaReservation(TenantOwnedModel):
    """Characters held for one piece of work until it is settled (used) or released."""

    class State(models.TextChoices):
        HELD = "held", "Held"
        SETTLED = "settled", "Settled"
        RELEASED = "released", "Released"

    period = models.ForeignKey(UsagePeriod, on_delete=models.PROTECT, related_name="+")
    characters = models.PositiveBigIntegerField()
    characters_settled = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.HELD)
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "created_at"], name="reservation_state_time")]


class TenantQuota(TenantOwnedModel):
    """Live counters that are not per period: jobs running now."""

    jobs_in_flight = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="tenantquota_unique")]


class IdempotencyRecord(TenantOwnedModel):
    """The first response to a POST sent with an Idempotency-Key (see tenants.idempotency)."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    key = models.CharField(max_length=255)
    # SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # How to answer again: {"kind": "json", "body": ...} or {"kind": "job_audio", "job_id": n}.
    replay = models.JSONField(default=dict, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_key")]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires")]

    def __str__(self) -> str:
        return f"idempotency key {self.key[:16]}"


class Invitation(TenantOwnedModel):
    """An offer to join a tenant, sent to an e-mail address; it becomes a membership only when
    the person signed in with that address accepts it. Inviting never reveals or touches an
    existing account."""

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    # SHA-256 of the token in the e-mailed link; the token itself is never stored.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # One open invitation per address; inviting again renews it.
            models.UniqueConstraint(
                fields=["tenant", "email"], condition=models.Q(accepted_at__isnull=True),
                name="invitation_unique_pending",
            )
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation of {self.email} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()
