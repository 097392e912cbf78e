"""GET /health: database, cache and broker (and workers with ?deep=1). 200 if all pass, else 503."""

import time
import uuid
from collections.abc import Callable

import dramatiq
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.embedded import embedded_worker_running


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _check_cache() -> str:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def _check_broker() -> str:
    broker = dramatiq.get_broker()
    kind = type(broker).__name__
    if kind == "RedisBroker":
        broker.client.ping()
    elif kind == "RabbitmqBroker":
        broker.connection  # noqa: B018  opens (or reuses) the AMQP connection
    elif settings.PARLA_EMBEDDED_WORKER and not embedded_worker_running():
        raise RuntimeError("the in-process worker is not running")
    return kind


def _check_worker() -> str:
    """A real round trip: enqueue a ping and wait for a worker to answer through the cache."""
    from tenants.tasks.actors import worker_ping

    token = uuid.uuid4().hex
    worker_ping.send(token)
    deadline = time.monotonic() + settings.PARLA_HEALTH_WORKER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if cache.get(f"worker_ping:{token}") == "pong":
            cache.delete(f"worker_ping:{token}")
            return "answered"
        time.sleep(0.05)
    raise RuntimeError("no worker answered a ping on the default queue")


CHECKS: dict[str, Callable[[], str]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
}


@never_cache
@require_GET
def health(request):
    """?deep=1 also checks that a worker consumes the default queue (slower)."""
    checks = dict(CHECKS)
    if request.GET.get("deep") in {"1", "true"}:
        checks["worker"] = _check_worker
    results, healthy = {}, True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            detail = check()
            results[name] = {"ok": True, "backend": detail}
        except Exception as exc:  # noqa: BLE001  any failure is a failed check, reported
            healthy = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    body = {
        "status": "ok" if healthy else "unavailable",
        "mode": "embedded" if settings.EMBEDDED else "services",
        "checks": results,
    }
    return JsonResponse(body, status=200 if healthy else 503)
