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
from tests.tenants.factories import ApiKeyFactory, TenantFactory
from tests.batches.factories import BatchFactory
from tests.synthesis.factories import SynthesisJobFactory
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


class _UnscopedQueries(ast.NodeVisitor):
    """Finds `<TenantModel>.objects.<filter|get|all|...>(` chains with no for_tenant()."""

    METHODS = {"filter", "get", "all", "exclude", "first", "last", "values", "values_list",
               "select_for_update", "update", "delete", "iterator", "count", "get_or_create",
               "update_or_create", "in_bulk", "select_related"}

    def __init__(self, tenant_models: set[str]) -> None:
        self.tenant_models = tenant_models
        self.hits: list[int] = []

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (
            node.attr in self.METHODS
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "objects"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id in self.tenant_models
        ):
            self.hits.append(node.lineno)
        self.generic_visit(node)


def test_no_unscoped_tenant_queries_outside_tenants_app():
    tenant_models = {m.__name__ for m in apps.get_models() if issubclass(m, TenantOwnedModel)}
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", "tenants", ".venv", "docker", "bench"} or "migrations" in rel.parts:
            continue
        visitor = _UnscopedQueries(tenant_models)
        tree = ast.parse(path.read_text(), filename=str(rel))
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and func.name.endswith("_all_tenants"):
                func.body = []  # Crossing tenants is allowed in *_all_tenants functions.
        visitor.visit(tree)
        offenders += [f"{rel}:{line}" for line in visitor.hits]

    assert offenders == []


def test_unscoped_query_scan_catches_a_violation():
    visitor = _UnscopedQueries({"VoiceProfile"})

    visitor.visit(ast.parse("VoiceProfile.objects.get(pk=1)\nVoiceProfile.objects.for_tenant(t).get(pk=1)"))

    assert visitor.hits == [1]


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
    missing_kwargs = {name: MISSING for name in kwargs}
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
