"""Operators' views. The admin crosses tenants by design; writes go through services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.forms.models import BaseInlineFormSet
from django.utils import timezone
from django.utils.html import format_html

from tenants.models import ApiKey, AuditEvent, Membership, Plan, Tenant, User
from tenants.selectors import tenant_usage_summary
from tenants.services import (
    ALL_SCOPES,
    AuditContext,
    api_key_create,
    api_key_revoke,
    membership_create,
    membership_delete,
    membership_role_change,
    tenant_create,
    tenant_update,
)


class ReadOnlyAdminMixin:
    """Rows an operator may look at and filter, never add, change or delete (ledgers, logs)."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _context(request) -> AuditContext:
    return AuditContext.from_request(request)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    pass


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "monthly_characters", "requests_per_minute", "concurrent_jobs",
                    "voices", "cloned_voices", "batch_items", "upload_bytes"]
    prepopulated_fields = {"slug": ["name"]}


class TenantInlineFormSet(BaseInlineFormSet):
    @classmethod
    def get_default_prefix(cls) -> str:
        # Tenant-owned rows have no reverse accessor (related_name="+"), so name the
        # formset after the model instead of the empty accessor.
        return cls.model._meta.model_name


class MembershipFormSet(TenantInlineFormSet):
    """The members of a tenant as an operator edits them. Saving goes through the membership
    services (as the system), which keep a tenant that has an owner from losing the last one;
    clean() says so on the form first, and refuses to move a membership to another user."""

    def clean(self) -> None:
        super().clean()
        kept = [form for form in self.forms if form.has_changed() or form.instance.pk]
        kept = [form for form in kept if not self._should_delete_form(form) and form.cleaned_data]
        for form in kept:
            if form.instance.pk and "user" in form.changed_data:
                raise forms.ValidationError("A membership keeps its user: remove it and add the other user instead.")
        had_owner = self.instance.pk and Membership.objects.for_tenant(self.instance).filter(
            role=Membership.Role.OWNER).exists()
        if had_owner and not any(form.cleaned_data.get("role") == Membership.Role.OWNER for form in kept):
            raise forms.ValidationError("A tenant needs at least one owner; make someone else owner first.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    formset = TenantInlineFormSet
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _usage_line(tenant: Tenant) -> str:
    usage = tenant_usage_summary(tenant=tenant)
    return (
        f"{usage.characters_used:,} used + {usage.characters_reserved:,} held of "
        f"{usage.characters_limit:,} characters ({usage.period_start:%B %Y}); "
        f"{usage.jobs_in_flight}/{usage.concurrent_jobs_limit} jobs running"
    )


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "status", "usage_this_period", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["name", "slug"]
    readonly_fields = ["usage_this_period", "created_at", "updated_at"]
    fields = ["name", "slug", "plan", "status", "time_zone", "usage_this_period", "created_at", "updated_at"]
    inlines = [MembershipInline, ApiKeyInline]
    actions = ["suspend", "activate"]

    @admin.display(description="Usage this period")
    def usage_this_period(self, tenant: Tenant) -> str:
        return _usage_line(tenant) if tenant.pk else "—"

    def save_model(self, request, obj: Tenant, form, change: bool) -> None:
        if not change:
            created = tenant_create(
                name=obj.name, slug=obj.slug, plan=obj.plan, time_zone=obj.time_zone,
                context=_context(request),
            )
            obj.pk, obj.webhook_secret = created.pk, created.webhook_secret
            if obj.status != created.status:
                tenant_update(tenant=created, status=obj.status, context=_context(request))
            return
        fresh = Tenant.objects.get(pk=obj.pk)
        tenant_update(
            tenant=fresh,
            context=_context(request),
            **{field: form.cleaned_data[field] for field in ["name", "plan", "status", "time_zone"]},
        )

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        tenant, context = form.instance, _context(request)
        changed = formset.save(commit=False)  # unsaved instances; the services write them
        # New members and new owners first, removals and demotions last, so that handing the
        # tenant to another owner in one save never leaves it without one on the way.
        for membership in sorted(changed, key=lambda m: (m.pk is not None, m.role != Membership.Role.OWNER)):
            if membership.pk is None:
                membership_create(tenant=tenant, actor=None, user=membership.user, role=membership.role,
                                  context=context)
            else:
                membership_role_change(tenant=tenant, actor=None, membership=membership, role=membership.role,
                                       context=context)
        for membership in formset.deleted_objects:
            membership_delete(tenant=tenant, actor=None, membership=membership, context=context)

    def _set_status(self, request, queryset, status: str) -> None:
        for tenant in queryset:
            tenant_update(tenant=tenant, status=status, context=_context(request))
        self.message_user(request, f"{queryset.count()} tenant(s) now {status}.", messages.SUCCESS)

    @admin.action(description="Suspend selected tenants (their keys stop working at once)")
    def suspend(self, request, queryset) -> None:
        self._set_status(request, queryset, Tenant.Status.SUSPENDED)

    @admin.action(description="Activate selected tenants")
    def activate(self, request, queryset) -> None:
        self._set_status(request, queryset, Tenant.Status.ACTIVE)


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, initial=ALL_SCOPES, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are listed and revoked here; the secret is never stored, so never shown."""

    list_display = ["name", "tenant", "prefix", "scope_list", "created_at", "last_used_at", "status"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "tenant__name", "tenant__slug"]
    readonly_fields = ["tenant", "name", "prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    exclude = ["secret_hash"]
    actions = ["revoke"]

    @admin.display(description="Scopes")
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes)

    @admin.display(description="Status")
    def status(self, api_key: ApiKey) -> str:
        if api_key.revoked_at:
            return format_html("revoked {}", timezone.localtime(api_key.revoked_at).strftime("%Y-%m-%d %H:%M"))
        return "active"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request, obj=None):
        return ["tenant", "name", "scopes"] if obj is None else self.readonly_fields

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        if change:
            return  # Keys are immutable; revoke instead.
        created = api_key_create(
            tenant=form.cleaned_data["tenant"],
            actor=None,  # an operator, not a member of the tenant
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            context=_context(request),
        )
        obj.pk = created.api_key.pk
        self.message_user(
            request,
            f"New key for {created.api_key.tenant}: {created.plaintext} — copy it now, "
            "it will not be shown again.",
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset) -> None:
        for api_key in queryset.select_related("tenant"):
            api_key_revoke(tenant=api_key.tenant, actor=None, api_key=api_key, context=_context(request))
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "action", "object_type", "object_repr", "actor", "ip_address"]
    list_filter = ["action", "tenant", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["action", "object_repr", "object_id", "tenant__name", "actor_user__username"]
    date_hierarchy = "created_at"

    @admin.display(description="Actor")
    def actor(self, event: AuditEvent) -> str:
        if event.actor_api_key_id:
            return f"key {event.actor_api_key}"
        return str(event.actor_user or "system")
