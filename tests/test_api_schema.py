"""Schemathesis against the OpenAPI document: no 5xx, and every response matches the schema.

Requests go through the WSGI application in this process with a valid key of a tenant whose
plan is generous enough that limits do not hide the endpoints' behaviour. No worker runs
here: speech requests answer 202 with their job after a short wait.
"""

import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.tenants.factories import ApiKeyFactory, TenantFactory


def _load_schema():
    # The document the /api/schema endpoint serves, generated in-process.
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()


@pytest.fixture
def api_key(db, settings):
    from django.core import signals
    from django.db import close_old_connections

    settings.PARLA_SYNC_WAIT_SECONDS = 0.01
    tenant = TenantFactory(plan__requests_per_minute=100_000, plan__concurrent_jobs=100_000,
                           plan__monthly_characters=10**9)
    # As Django's test client does: the test's transaction must survive each request's end.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield ApiKeyFactory.create_with_plaintext(tenant=tenant).plaintext
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_answers_match_the_schema_and_never_5xx(case, api_key):
    # Schema-valid is not always acceptable here: an upload must decode as audio, a voice id
    # must exist, text must have something to speak. Those answer 4xx by design.
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"},
                           excluded_checks=[positive_data_acceptance])
