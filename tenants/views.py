"""Dashboard pages of the tenant: API keys, settings (members, webhook, plan), invitations and
the switcher.

Each view parses a form, calls the same services and selectors as the API, and renders.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.mail import send_mail
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from tenants.authentication import SESSION_TENANT_KEY
from tenants.dashboard import form_add_application_error, tenant_page
from tenants.errors import ApplicationError, Forbidden, NotFound
from tenants.forms import ApiKeyCreateForm, InvitationAccountForm, MemberAddForm, WebhookForm
from tenants.models import ApiKey, Membership
from tenants.selectors import (
    api_key_get,
    api_key_list,
    invitation_get,
    invitation_get_by_token,
    invitation_list_pending,
    membership_get,
    membership_list,
    membership_list_for_user,
    tenant_usage_summary,
    user_has_account,
)
from tenants.services import (
    AuditContext,
    CreatedInvitation,
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_accept_with_new_account,
    invitation_create,
    invitation_revoke,
    membership_delete,
    membership_role_change,
    tenant_webhook_secret_rotate,
    tenant_webhook_url_set,
)

# --- API keys ---------------------------------------------------------------------------------


@never_cache  # The page that shows a new secret must not be kept by any cache.
@tenant_page(managers_only=True)
def keys_page(request):
    form = ApiKeyCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_key_create(
                tenant=request.tenant,
                actor=request.tenant_membership,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                context=AuditContext.from_request(request),
            )
        except ApplicationError as exc:
            form_add_application_error(form, exc)
        else:
            # NOTE: rendered, not redirected: the secret exists only in this response.
            form = ApiKeyCreateForm()
    keys = list(api_key_list(tenant=request.tenant))
    labels = dict(ApiKey.Scope.choices)
    for key in keys:
        key.scope_items = [(scope, labels.get(scope, scope)) for scope in key.scopes]
    return render(request, "tenants/keys.html", {
        "form": form,
        "created": created,
        "active_keys": [key for key in keys if not key.is_revoked],
        "revoked_keys": [key for key in keys if key.is_revoked],
    })


@require_POST
@tenant_page(managers_only=True)
def key_revoke(request, key_id: int):
    api_key = api_key_get(tenant=request.tenant, api_key_id=key_id)
    try:
        api_key_revoke(tenant=request.tenant, actor=request.tenant_membership, api_key=api_key,
                       context=AuditContext.from_request(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The key “{api_key.name}” ({api_key.prefix}…) is revoked; "
                                  "it is refused from now on.")
    return redirect("tenants:keys")


# --- Settings ---------------------------------------------------------------------------------

_MB = 1024 * 1024
PLAN_LIMITS = (
    ("monthly_characters", "Characters per month", "{:,}"),
    ("request_characters", "Characters per request", "{:,}"),
    ("requests_per_minute", "Requests per minute", "{:,}"),
    ("concurrent_jobs", "Jobs running at once", "{:,}"),
    ("voices", "Own voices", "{:,}"),
    ("cloned_voices", "Cloned voices", "{:,}"),
    ("references_per_voice", "Recordings per voice", "{:,}"),
    ("batch_items", "Lines per batch", "{:,}"),
    ("upload_bytes", "Largest recording upload", None),
)


def _plan_limits(plan) -> list[dict]:
    rows = []
    for field, label, fmt in PLAN_LIMITS:
        value = getattr(plan, field)
        shown = f"{value / _MB:g} MB" if fmt is None else fmt.format(value)
        rows.append({"label": label, "value": shown})
    return rows


def _settings_page(request, *, member_form=None, webhook_form=None, status: int = 200):
    tenant = request.tenant
    tenant.refresh_from_db(fields=["webhook_url", "webhook_secret"])
    from tenants.outbound import SIGNATURE_HEADER

    usage = tenant_usage_summary(tenant=tenant)
    return render(request, "tenants/settings.html", {
        "memberships": membership_list(tenant=tenant).order_by("created_at"),
        "invitations": invitation_list_pending(tenant=tenant),
        "member_form": member_form or MemberAddForm(actor_role=request.tenant_role),
        "role_choices": Membership.Role.choices,
        "webhook_form": webhook_form or WebhookForm(initial={"url": tenant.webhook_url}),
        "webhook_secret": tenant.webhook_secret,
        "signature_header": SIGNATURE_HEADER,
        "plan": tenant.plan,
        "plan_limits": _plan_limits(tenant.plan),
        "usage": usage,
        "usage_percent": _percent(usage.characters_used + usage.characters_reserved, usage.characters_limit),
    }, status=status)


def _percent(part: int, whole: int) -> int:
    return min(100, round(100 * part / whole)) if whole else 100


@tenant_page(managers_only=True)
def settings_page(request):
    return _settings_page(request)


def _invitation_send(request, created: CreatedInvitation) -> None:
    """The same e-mail whether or not the address has an account: the link's page tells them apart."""
    invitation = created.invitation
    link = request.build_absolute_uri(reverse("tenants:invitation-accept", kwargs={"token": created.token}))
    context = {"tenant": request.tenant, "inviter": request.user, "link": link,
               "role": invitation.get_role_display().lower(), "days": settings.PARLA_INVITATION_DAYS}
    send_mail(
        subject=f"You are invited to join {request.tenant.name} on Parla",
        message=render_to_string("tenants/invitation_email.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@require_POST
@tenant_page(managers_only=True)
def member_add(request):
    """Invite someone. Nobody is added until they accept, whether or not they have an account."""
    form = MemberAddForm(request.POST, actor_role=request.tenant_role)
    if not form.is_valid():
        return _settings_page(request, member_form=form)
    try:
        created = invitation_create(tenant=request.tenant, actor=request.tenant_membership,
                                    email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                                    context=AuditContext.from_request(request))
    except ApplicationError as exc:
        form_add_application_error(form, exc)
        return _settings_page(request, member_form=form)
    _invitation_send(request, created)
    invitation = created.invitation
    # SECURITY: the same words for every address, so the page does not tell who has an account.
    messages.success(request, f"If {invitation.email} can receive e-mail, we sent it an invitation to join as "
                              f"{invitation.get_role_display().lower()}. It becomes a member once the invitation "
                              f"is accepted (the link works for {settings.PARLA_INVITATION_DAYS} days).")
    return redirect(reverse("tenants:settings") + "#members")


@require_POST
@tenant_page(managers_only=True)
def invitation_revoke_view(request, invitation_id: int):
    invitation = invitation_get(tenant=request.tenant, invitation_id=invitation_id)
    try:
        invitation_revoke(tenant=request.tenant, actor=request.tenant_membership, invitation=invitation,
                          context=AuditContext.from_request(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation of {invitation.email} is withdrawn; its link no longer works.")
    return redirect(reverse("tenants:settings") + "#members")


@never_cache
def invitation_accept_page(request, token: str):
    """Where an invitation's link leads. Only the invited address can accept: signed in with
    it, or, when it has no account yet, by creating one here."""
    try:
        invitation = invitation_get_by_token(token=token)
    except NotFound:
        return render(request, "tenants/invitation.html", {"state": "invalid"}, status=404)
    page = {"invitation": invitation, "tenant": invitation.tenant,
            "role": invitation.get_role_display().lower()}
    if not request.user.is_authenticated:
        if user_has_account(email=invitation.email):
            return redirect_to_login(request.get_full_path())
        return _invitation_new_account(request, invitation, page)
    if (request.user.email or "").lower() != invitation.email:
        return render(request, "tenants/invitation.html", {**page, "state": "other_account"}, status=403)
    if request.method == "POST":
        try:
            membership = invitation_accept(invitation=invitation, user=request.user,
                                           context=AuditContext.from_request(request))
        except (NotFound, Forbidden) as exc:
            return render(request, "tenants/invitation.html", {"state": "invalid", "message": exc.message},
                          status=exc.status)
        return _joined(request, membership)
    return render(request, "tenants/invitation.html", {**page, "state": "accept"})


def _invitation_new_account(request, invitation, page: dict):
    form = InvitationAccountForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            membership = invitation_accept_with_new_account(
                invitation=invitation, password=form.cleaned_data["new_password1"],
                context=AuditContext.from_request(request),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return _joined(request, membership)
    return render(request, "tenants/invitation.html", {**page, "state": "new_account", "form": form})


def _joined(request, membership):
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    messages.success(request, f"Welcome to {membership.tenant.name}: you are a {membership.get_role_display().lower()} "
                              "of this workspace.")
    return redirect("dashboard")


@require_POST
@tenant_page(managers_only=True)
def member_remove(request, membership_id: int):
    membership = membership_get(tenant=request.tenant, membership_id=membership_id)
    try:
        # The service decides who may remove whom (yourself, an owner, the last owner).
        membership_delete(tenant=request.tenant, actor=request.tenant_membership, membership=membership,
                          context=AuditContext.from_request(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.email or membership.user.get_username()} was removed.")
    return redirect(reverse("tenants:settings") + "#members")


@require_POST
@tenant_page(managers_only=True)
def member_role_change(request, membership_id: int):
    membership = membership_get(tenant=request.tenant, membership_id=membership_id)
    role = request.POST.get("role", "")
    name = membership.user.email or membership.user.get_username()
    if role not in Membership.Role.values:
        messages.error(request, "Choose a role: owner, admin or member.")
    else:
        try:
            # The service decides who may give which role (your own, an owner's, the last owner's).
            membership_role_change(tenant=request.tenant, actor=request.tenant_membership, membership=membership,
                                   role=role, context=AuditContext.from_request(request))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{name} is now {Membership.Role(role).label.lower()}.")
    return redirect(reverse("tenants:settings") + "#members")


@require_POST
@tenant_page(managers_only=True)
def webhook_update(request):
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            tenant_webhook_url_set(tenant=request.tenant, url=form.cleaned_data["url"],
                                   context=AuditContext.from_request(request))
        except ApplicationError as exc:
            form_add_application_error(form, exc, {"webhook_url": "url", "url": "url"})
        else:
            messages.success(request, "Webhook URL saved." if form.cleaned_data["url"] else "Webhooks are off.")
            return redirect(reverse("tenants:settings") + "#webhooks")
    return _settings_page(request, webhook_form=form)


@require_POST
@tenant_page(managers_only=True)
def webhook_secret_rotate(request):
    tenant_webhook_secret_rotate(tenant=request.tenant, context=AuditContext.from_request(request))
    messages.success(request, "A new signing secret is in effect from the next delivery. Update your receiver.")
    return redirect(reverse("tenants:settings") + "#webhooks")


# --- Tenant switcher --------------------------------------------------------------------------


@require_POST
@login_required  # Not tenant_page: a member must be able to leave a suspended workspace.
def tenant_switch(request):
    try:
        tenant_id = int(request.POST.get("tenant", ""))
    except ValueError:
        raise Http404 from None
    # SECURITY: only tenants the user belongs to; anything else looks like an unknown id.
    membership = membership_list_for_user(user=request.user).filter(tenant_id=tenant_id).first()
    if membership is None:
        raise Http404
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    messages.success(request, f"You are now working in {membership.tenant.name}.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = reverse("dashboard")
    return redirect(next_url)
