"""Tenancy holds by construction: these meta-tests fail when a new view or model skips it."""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tenants.api_base import TenantScopedMixin
from tenants.models import ApiKey
from tenants.scoping import TenantOwnedModel
from tests.batches.factories import BatchFactory
from tests.synthesis.factories import SynthesisJobFactory
from tests.tenants.factories import ApiKeyFactory, TenantFactory
from tests.voices.factories import VoiceProfileFactory, VoiceReferenceFactory

ROOT = Path(__file__).resolve().parent.parent
TENANT_APPS = ["voices", "synthesis", "batches", "analytics"]
# Models in those apps that are global on purpose (e.g. the engines' catalog voices).
GLOBAL_MODELS: set[str] = set()
# API routes that carry no tenant data.
PUBLIC_API_VIEWS = {"SpectacularAPIView", "SpectacularSwaggerView", "SpectacularRedocView"}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _api_views():
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(("api/", "^api/", "v1/")):
            yield route, getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)


def test_every_api_view_derives_from_the_tenant_base_view():
    views = list(_api_views())
    offenders = [
        (route, cls) for route, cls in views
        if cls is None or (cls.__name__ not in PUBLIC_API_VIEWS and not issubclass(cls, TenantScopedMixin))
    ]

    assert len(views) >= 3
    assert offenders == []


def test_tenant_base_view_refuses_overridden_scoping():
    from tenants.api_base import TenantScopedViewSet

    with pytest.raises(TypeError, match="must not override get_queryset"):
        type("Sneaky", (TenantScopedViewSet,), {"required_scope": None, "get_queryset": lambda self: None})
    with pytest.raises(TypeError, match="must declare required_scope"):
        type("Forgetful", (TenantScopedViewSet,), {})


def test_every_model_in_tenant_apps_is_tenant_owned_or_declared_global():
    offenders = [
        model.__name__
        for app in TENANT_APPS
        for model in apps.get_app_config(app).get_models()
        if not issubclass(model, TenantOwnedModel) and model.__name__ not in GLOBAL_MODELS
    ]

    assert offenders == []


def test_tenant_models_outside_tenants_app_are_tenant_owned():
    owned = {m for m in apps.get_models() if issubclass(m, TenantOwnedModel)}

    assert {"Membership", "ApiKey", "AuditEvent", "UsagePeriod", "QuotaReservation"} <= {
        m.__name__ for m in owned
    }


# Code that reads or writes tenant rows without for_tenant() on purpose, by (module, function),
# each with its reason. Functions named *_all_tenants cross tenants by their name (STYLE §3.6) and
# need no entry. An entry that no longer matches an unscoped query fails
# test_unscoped_query_allow_list_has_no_stale_entries, so the list cannot outlive its reasons.
UNSCOPED_QUERIES_ALLOWED: dict[tuple[str, str], str] = {
    ("tenants/selectors.py", "api_key_by_prefix"):
        "authentication finds a key by its globally unique prefix; the key names its tenant",
    ("tenants/selectors.py", "invitation_get_by_token"):
        "the link's token is the credential, like a key; the tenant comes from the invitation row",
    ("tenants/selectors.py", "membership_list_for_user"):
        "a signed-in user's own memberships across tenants (the workspace switcher)",
    ("tenants/selectors.py", "tenant_for_user"):
        "below the scoping: finds the tenant a user acts in, among the user's own memberships",
}
SCANNED_SKIP = {"tests", ".venv", "docker", "bench", "var", "test-artifacts", "static", "templates"}


class _UnscopedQueries(ast.NodeVisitor):
    """Finds tenant rows reached without for_tenant().

    A hit is `<TenantModel>.objects.<method>` (or `_default_manager`, `_base_manager`) for any
    method but for_tenant() and the writes that carry their rows' tenant (create, bulk_create,
    bulk_update), and a bare `<TenantModel>.objects` handed on elsewhere than a viewset's
    `queryset = ...` (the base class scopes that one). `.raw(` is left to
    tests/test_raw_sql_tenancy.py, which runs every raw statement with another tenant's id.
    Each hit is (line, enclosing function names, outermost first).
    """

    MANAGERS = {"objects", "_default_manager", "_base_manager"}
    SCOPED = {"for_tenant", "create", "bulk_create", "bulk_update", "raw"}

    def __init__(self, tenant_models: set[str]) -> None:
        self.tenant_models = tenant_models
        self.hits: list[tuple[int, tuple[str, ...]]] = []
        self._functions: list[str] = []
        self._parents: list[ast.AST] = []

    def visit(self, node: ast.AST) -> None:
        is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        if is_function:
            self._functions.append(node.name)
        if self._is_manager(node) and not self._scoped_use(node):
            self.hits.append((node.lineno, tuple(self._functions)))
        self._parents.append(node)
        super().visit(node)
        self._parents.pop()
        if is_function:
            self._functions.pop()

    def _is_manager(self, node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr in self.MANAGERS
            and isinstance(node.value, ast.Name)
            and node.value.id in self.tenant_models
        )

    def _scoped_use(self, node: ast.Attribute) -> bool:
        parent = self._parents[-1] if self._parents else None
        if isinstance(parent, ast.Attribute):  # Model.objects.<method>
            return parent.attr in self.SCOPED
        grandparent = self._parents[-2] if len(self._parents) > 1 else None
        return (  # class SomeViewSet(TenantScopedViewSet): queryset = Model.objects
            isinstance(parent, ast.Assign)
            and isinstance(grandparent, ast.ClassDef)
            and [getattr(target, "id", None) for target in parent.targets] == ["queryset"]
        )


def _tenant_model_names() -> set[str]:
    return {m.__name__ for m in apps.get_models() if issubclass(m, TenantOwnedModel)}


def _unscoped_queries() -> list[tuple[str, int, tuple[str, ...]]]:
    """Every hit in the app code (migrations, tests, tools and the like aside)."""
    tenant_models = _tenant_model_names()
    found = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SCANNED_SKIP or rel.parts[0].startswith(".") or "migrations" in rel.parts:
            continue
        visitor = _UnscopedQueries(tenant_models)
        visitor.visit(ast.parse(path.read_text(), filename=str(rel)))
        found += [(rel.as_posix(), line, functions) for line, functions in visitor.hits]
    return found


def _allowed(module: str, functions: tuple[str, ...]) -> bool:
    return any(name.endswith("_all_tenants") or (module, name) in UNSCOPED_QUERIES_ALLOWED for name in functions)


def test_no_unscoped_tenant_queries_in_the_app_code_tenants_included():
    offenders = [
        f"{module}:{line} in {'.'.join(functions) or '<module>'}"
        for module, line, functions in _unscoped_queries()
        if not _allowed(module, functions)
    ]

    assert offenders == []


def test_unscoped_query_allow_list_has_no_stale_entries():
    used = {(module, name) for module, _line, functions in _unscoped_queries() for name in functions}

    assert set(UNSCOPED_QUERIES_ALLOWED) - used == set()
    assert all(reason.strip() for reason in UNSCOPED_QUERIES_ALLOWED.values())


def test_unscoped_query_scan_covers_the_tenants_app():
    modules = {module for module, _line, _functions in _unscoped_queries()}

    assert "tenants/selectors.py" in modules


def test_unscoped_query_scan_catches_a_violation():
    source = """
VoiceProfile.objects.get(pk=1)
VoiceProfile.objects.select_related("x").get(pk=1)
VoiceProfile.objects.using("default").filter(pk=1)
VoiceProfile._default_manager.filter(pk=1)
VoiceProfile.objects.get_or_create(tenant=t)
manager = VoiceProfile.objects
def helper():
    return VoiceProfile.objects.exists()
VoiceProfile.objects.for_tenant(t).get(pk=1)
VoiceProfile.objects.create(tenant=t, name="a")
class VoiceViewSet:
    queryset = VoiceProfile.objects
Batch.objects.filter(pk=1)
"""
    visitor = _UnscopedQueries({"VoiceProfile"})

    visitor.visit(ast.parse(source))

    assert visitor.hits == [(2, ()), (3, ()), (4, ()), (5, ()), (6, ()), (7, ()), (9, ("helper",))]


# --- Every route with a second tenant's key -------------------------------------------

# Every API route that takes an object id: how to make such an object for a tenant, and the
# URL arguments that point at it. A new detail route fails
# test_every_detail_route_is_in_the_cross_tenant_walk until it is listed here.
def _api_key(tenant):
    api_key = ApiKeyFactory.create(tenant=tenant)
    return api_key, {"pk": api_key.pk}


def _voice(tenant):
    profile = VoiceProfileFactory(tenant=tenant)
    return profile, {"pk": profile.pk}


def _reference(tenant):
    reference = VoiceReferenceFactory(profile__tenant=tenant)
    return reference, {"pk": reference.profile_id, "reference_id": reference.pk}


def _job(tenant):
    job = SynthesisJobFactory(tenant=tenant)
    return job, {"pk": job.pk}


def _batch(tenant):
    batch = BatchFactory(tenant=tenant)
    return batch, {"pk": batch.pk}


OBJECT_FACTORIES = {
    "api-key-detail": _api_key,
    "batch-detail": _batch,
    "batch-items": _batch,
    "batch-cancel": _batch,
    "batch-retry": _batch,
    "batch-export": _batch,
    "batch-webhooks": _batch,
    "job-detail": _job,
    "job-audio": _job,
    "voice-detail": _voice,
    "voice-references": _voice,
    "voice-preview": _voice,
    "voice-reference-delete": _reference,
}
MISSING = 987654321


def _detail_route_names() -> set[str]:
    return {
        pattern.name
        for route, pattern in _walk(get_resolver().url_patterns)
        if route.startswith(("api/", "^api/", "v1/")) and "<" in route
    }


def test_every_detail_route_is_in_the_cross_tenant_walk():
    assert _detail_route_names() == set(OBJECT_FACTORIES)


@pytest.mark.django_db
@pytest.mark.parametrize("route_name", sorted(OBJECT_FACTORIES))
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "post"])
def test_detail_routes_answer_another_tenants_object_like_a_missing_one(api_client_for, route_name, method):
    mine, theirs = TenantFactory(), TenantFactory()
    theirs_obj, kwargs = OBJECT_FACTORIES[route_name](theirs)
    before = model_to_dict(type(theirs_obj).objects.get(pk=theirs_obj.pk))
    missing_kwargs = dict.fromkeys(kwargs, MISSING)
    client = api_client_for(mine)

    foreign = getattr(client, method)(reverse(route_name, kwargs=kwargs), {}, format="json")
    missing = getattr(client, method)(reverse(route_name, kwargs=missing_kwargs), {}, format="json")

    assert foreign.status_code == missing.status_code
    assert foreign.status_code in (404, 405)
    assert foreign.json() == missing.json()
    assert model_to_dict(type(theirs_obj).objects.get(pk=theirs_obj.pk)) == before


@pytest.mark.django_db
def test_keys_list_returns_only_the_callers_keys(api_client_for):
    mine, theirs = TenantFactory(), TenantFactory()
    ApiKeyFactory.create(tenant=theirs, name="theirs")
    client = api_client_for(mine)

    names = {row["name"] for row in client.get("/api/v1/keys").json()["results"]}

    assert "theirs" not in names
    assert names == set(ApiKey.objects.for_tenant(mine).values_list("name", flat=True))


@pytest.mark.django_db
def test_keys_create_ignores_tenant_in_body(api_client_for):
    mine, theirs = TenantFactory(), TenantFactory()

    response = api_client_for(mine).post(
        "/api/v1/keys", {"name": "planted", "tenant": theirs.pk, "tenant_id": theirs.pk}, format="json"
    )

    assert response.status_code == 201
    assert ApiKey.objects.get(pk=response.json()["id"]).tenant == mine
    assert not ApiKey.objects.for_tenant(theirs).filter(name="planted").exists()


@pytest.mark.django_db
def test_tenant_detail_is_always_the_callers_tenant(api_client_for):
    mine, theirs = TenantFactory(), TenantFactory()

    body = api_client_for(mine).get("/api/v1/tenant", {"tenant": theirs.slug, "id": theirs.pk}).json()

    assert body["slug"] == mine.slug


@pytest.mark.django_db
def test_jobs_list_returns_only_the_callers_jobs(api_client_for):
    mine, theirs = TenantFactory(), TenantFactory()
    SynthesisJobFactory(tenant=theirs)
    own = SynthesisJobFactory(tenant=mine)

    rows = api_client_for(mine).get("/api/v1/jobs").json()["results"]

    assert [row["id"] for row in rows] == [own.pk]


@pytest.mark.django_db
def test_deleting_another_tenants_job_leaves_its_audio(api_client_for):
    from django.core.files.storage import default_storage

    mine, theirs = TenantFactory(), TenantFactory()
    job = SynthesisJobFactory(tenant=theirs)

    response = api_client_for(mine).delete(f"/api/v1/jobs/{job.pk}")

    assert response.status_code == 404
    assert default_storage.exists(job.storage_path)
