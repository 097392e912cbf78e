"""Plumbing shared by the dashboard's server-rendered pages.

Every page view is wrapped in `tenant_page`: it signs the visitor in, takes the tenant from
the session through `tenant_for_request` (the same function the API uses; never from the
URL), checks the role, and turns a selector's NotFound into the HTML 404 page. The context
processor gives every template the navigation, the role and the tenant switcher.

Pages of other apps join the navigation by defining the URL names in NAVIGATION; an entry
whose URL does not exist yet is left out.

A page shows a service's ApplicationError through form_add_application_error,
message_add_application_error or application_error_json_response; these (and the rate-limit
page) count a refusal by a tenant limit for operators, as the API's exception handler does.
"""

from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from tenants.authentication import membership_for_request, tenant_for_request
from tenants.errors import (
    ApplicationError,
    ErrorCode,
    Forbidden,
    NoTenant,
    NotFound,
    TenantSuspended,
    error_body,
    quota_rejection_record,
)
from tenants.ratelimit import RateLimitResult, tenant_rate_limit_hit
from tenants.selectors import membership_list_for_user, membership_role
from tenants.services import MANAGER_ROLES


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    icon: str  # a symbol id in templates/includes/icons.html
    managers_only: bool = False


NAVIGATION = (
    NavItem("Speak", "synthesis:speak", "speak"),
    NavItem("Voices", "voices:index", "voices"),
    NavItem("Batches", "batches:index", "batches"),
    NavItem("Usage", "analytics:usage", "usage"),
    NavItem("API keys", "tenants:keys", "keys", managers_only=True),
    NavItem("Settings", "tenants:settings", "settings", managers_only=True),
)


def can_manage(role: str | None) -> bool:
    return role in MANAGER_ROLES


def tenant_page(view=None, *, managers_only: bool = False):
    """Decorate a page view: signed-in member of an active tenant (and owner/admin if asked).

    Sets request.tenant, request.tenant_membership (the acting membership, for the services)
    and request.tenant_role. A foreign or missing object (NotFound from a
    selector) becomes the 404 page, so another tenant's ids look exactly like unknown ones.
    """

    def decorator(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                request.tenant = tenant_for_request(request)
            except NoTenant:
                return render(request, "tenants/no_tenant.html", status=403)
            except TenantSuspended:
                return render(request, "tenants/suspended.html", status=403)
            # The acting membership goes to the services, which check the role again.
            request.tenant_membership = membership_for_request(request)
            request.tenant_role = request.tenant_membership.role if request.tenant_membership else None
            if managers_only and not can_manage(request.tenant_role):
                raise PermissionDenied("Only owners and admins can open this page.")
            try:
                return func(request, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from None
            except Forbidden as exc:  # a service refused the acting member's role
                raise PermissionDenied(exc.message) from None

        return wrapper

    return decorator(view) if view is not None else decorator


def posts_rate_limited(view=None, *, json: bool = False):
    """Count each POST to a page that makes work against the plan's requests per minute.

    Wrap the view inside `tenant_page`. The window is the one the API counts in, so moving
    from the API to the dashboard gains nothing. Over the limit the view does not run: a 429
    page (or, with json=True, the API's error body) says how long to wait.
    """

    def decorator(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST":
                result = tenant_rate_limit_hit(tenant=request.tenant)
                if not result.allowed:
                    return _rate_limited_response(request, result, json=json)
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


def _rate_limited_response(request, result: RateLimitResult, *, json: bool):
    quota_rejection_record(ErrorCode.RATE_LIMITED)
    wait = max(1, result.reset_seconds)
    message = (f"Too many requests: this workspace's plan allows {result.limit} a minute. "
               f"Nothing was made; wait {wait} seconds and try again.")
    if json:
        response = JsonResponse(
            error_body(ErrorCode.RATE_LIMITED, message, {"limit": result.limit, "window_seconds": 60}), status=429
        )
    else:
        response = render(request, "tenants/rate_limited.html", {
            "message": message, "limit": result.limit, "wait_seconds": wait, "back_url": request.get_full_path(),
        }, status=429)
    response["Retry-After"] = str(wait)
    for header, value in result.headers().items():
        response[header] = value
    return response


def _nav(request, role: str | None) -> list[dict]:
    items = []
    for item in NAVIGATION:
        if item.managers_only and not can_manage(role):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue  # That page is not built (or not installed) yet.
        items.append({"label": item.label, "url": url, "icon": item.icon,
                      "active": request.path.startswith(url)})
    return items


def dashboard_context(request) -> dict:
    """Navigation, role and tenant switcher for every template (empty for visitors)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    tenant = getattr(request, "tenant", None)
    if not tenant:  # Signed in but a member of no tenant (the middleware's lazy None is falsy).
        return {"dashboard_memberships": []}
    role = getattr(request, "tenant_role", None)
    if role is None:
        role = membership_role(tenant=tenant, user=user)
    memberships = list(membership_list_for_user(user=user).order_by("tenant__name"))
    return {
        "dashboard_nav": _nav(request, role),
        "dashboard_role": role,
        "dashboard_can_manage": can_manage(role),
        "dashboard_tenant": tenant,
        "dashboard_memberships": memberships,
    }


def form_add_application_error(
    form, exc: ApplicationError, field_names: dict[str, str] | None = None, *,
    field: str | None = None, message: str | None = None,
) -> None:
    """Show a service's error on the form: on `field` when given, else on its field when the
    error names one we show (`field_names` maps the service's names to the form's), else
    above the form; `message` replaces the error's own."""
    quota_rejection_record(exc.code, exc)
    if field is None:
        field_names = field_names or {}
        named = (field_names.get(name, name) for name in exc.extra.get("fields") or {})
        field = next((name for name in named if name in form.fields), None)
    form.add_error(field, message or exc.message)


def message_add_application_error(request, exc: ApplicationError) -> None:
    """Show a service's error as a message on the next page (an action that redirects)."""
    quota_rejection_record(exc.code, exc)
    messages.error(request, exc.message)


def application_error_json_response(exc: ApplicationError) -> JsonResponse:
    """A service's error in the API's shape, for the pages' scripts."""
    quota_rejection_record(exc.code, exc)
    return JsonResponse(error_body(exc.code, exc.message, exc.extra), status=exc.status)
