import os
import socket
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

from tests.tenants.factories import ApiKeyFactory, TenantFactory


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    """Stop at once, with a clear message, when PostgreSQL or Redis is not reachable."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    db_url = os.environ["DATABASE_URL"]
    if database["ENGINE"].endswith("postgresql") and not _reachable(db_url, 5432):
        pytest.exit(
            f"PostgreSQL is not reachable at {database.get('HOST')}:{database.get('PORT') or 5432}. "
            "Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or set DATABASE_URL.",
            returncode=3,
        )
    if not _reachable(settings.REDIS_URL, 6379):
        pytest.exit(
            f"Redis is not reachable at {settings.REDIS_URL}. Start it (redis-server --daemonize "
            "yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no) or set REDIS_URL.",
            returncode=3,
        )


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a process a test started (or one it forked) outlived the tests."""
    from tests.helpers import kill_left_behind

    left = kill_left_behind()
    if left:
        lines = [f"  {' '.join(map(str, p.args))[:200]}: pids {pids}" for p, pids in left.items()]
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line("Processes started by the tests were still running at the end (now "
                                "killed):\n" + "\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def tenant(db):
    return TenantFactory()


@pytest.fixture
def api_client_for(db):
    """api_client_for(tenant, scopes=None) -> an APIClient that sends a fresh key of tenant."""

    def make(tenant, scopes=None, header: str = "bearer") -> APIClient:
        created = ApiKeyFactory.create_with_plaintext(tenant=tenant, scopes=scopes)
        client = APIClient()
        if header == "bearer":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.plaintext}")
        else:
            client.credentials(HTTP_X_API_KEY=created.plaintext)
        client.api_key = created.api_key
        client.plaintext = created.plaintext
        return client

    return make


@pytest.fixture(autouse=True)
def _default_plans(request):
    """Transactional tests truncate every table, the migration's default plans included."""
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("db")
    from tenants.models import Plan
    from tenants.plans import plans_ensure_defaults

    plans_ensure_defaults(plan_model=Plan)
