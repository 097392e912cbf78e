"""GET /health: database, cache and broker (and workers with ?deep=1). 200 if all pass, else 503.

The plain check is public (load balancers, the container healthcheck): a failure says only
which part is down ("database unreachable"), never the exception, whose text can name hosts,
users or paths; the exception goes to the log. ?deep=1 sends a message through the broker and
waits for a worker, so it costs work and names what failed: it answers only loopback clients
and requests bearing PARLA_METRICS_TOKEN, like /metrics.
"""

import logging
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

from config.client_address import client_address, is_loopback
from config.embedded import embedded_worker_running
from config.metrics import metrics_token_presented
from tenants.errors import ErrorCode, json_error_response

logger = logging.getLogger(__name__)


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
# What a failed check says publicly.
FAILURES = {
    "database": "database unreachable",
    "cache": "cache unreachable",
    "broker": "broker unreachable",
    "worker": "no worker answered",
}


def _deep_allowed(request) -> bool:
    return is_loopback(client_address(request)) or metrics_token_presented(request)


@never_cache
@require_GET
def health(request):
    """?deep=1 also checks that a worker consumes the default queue (slower)."""
    checks = dict(CHECKS)
    deep = request.GET.get("deep") in {"1", "true"}
    if deep:
        if not _deep_allowed(request):
            return json_error_response(
                ErrorCode.PERMISSION_DENIED,
                "?deep=1 is for operators: call it from the host itself or send the metrics token.", 403,
            )
        checks["worker"] = _check_worker
    results, healthy = {}, True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            detail = check()
            results[name] = {"ok": True, "backend": detail}
        except Exception as exc:  # noqa: BLE001  any failure is a failed check, reported
            healthy = False
            logger.warning("health.check_failed", extra={"check": name}, exc_info=True)
            results[name] = {"ok": False, "error": FAILURES[name]}
            if deep:  # an operator asked: the exception helps and reaches no one else
                results[name]["detail"] = f"{type(exc).__name__}: {exc}"[:300]
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    body = {
        "status": "ok" if healthy else "unavailable",
        "mode": "embedded" if settings.EMBEDDED else "services",
        "checks": results,
    }
    return JsonResponse(body, status=200 if healthy else 503)
