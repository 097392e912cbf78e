import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_health_is_ok_when_database_cache_and_broker_answer():
    response = APIClient().get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["backend"] == "postgresql"
    assert body["checks"]["cache"]["backend"] == "RedisCache"
    assert body["checks"]["broker"]["backend"] == "RedisBroker"


def test_health_is_503_when_the_cache_is_unreachable(settings):
    # A real Redis client pointed at a port where nothing listens.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    caches._settings = None  # Django rebuilds its cache handlers on the next access.
    try:
        response = APIClient().get("/health")
    finally:
        caches._settings = None

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["cache"]["ok"] is False
    assert response.json()["checks"]["database"]["ok"] is True


def _cache_unreachable(settings) -> None:
    # A real Redis client pointed at a port where nothing listens.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://parla-user:s3cret@127.0.0.1:1/0",
        }
    }
    caches._settings = None  # Django rebuilds its cache handlers on the next access.


def test_health_failure_names_no_host_user_or_exception(settings):
    _cache_unreachable(settings)
    try:
        response = APIClient().get("/health")
    finally:
        caches._settings = None

    body = response.content.decode()
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {"ok": False, "error": "cache unreachable",
                                                  "ms": response.json()["checks"]["cache"]["ms"]}
    assert "127.0.0.1" not in body and "parla-user" not in body and "Error" not in body


def test_health_deep_is_refused_to_other_addresses():
    response = APIClient().get("/health?deep=1", REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_health_deep_is_refused_with_a_wrong_metrics_token(settings):
    settings.PARLA_METRICS_TOKEN = "scrape-token-0123456789"

    response = APIClient().get("/health?deep=1", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer nope")

    assert response.status_code == 403


def test_health_deep_answers_the_metrics_token_from_anywhere_with_details(settings):
    settings.PARLA_METRICS_TOKEN = "scrape-token-0123456789"
    _cache_unreachable(settings)
    try:
        response = APIClient().get("/health?deep=1", REMOTE_ADDR="203.0.113.7",
                                   HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    finally:
        caches._settings = None

    checks = response.json()["checks"]
    assert response.status_code == 503
    assert checks["cache"]["error"] == "cache unreachable"
    assert "Error" in checks["cache"]["detail"]  # an operator asked: the exception helps
    assert checks["worker"]["ok"] is False


def test_health_deep_answers_loopback_clients(settings):
    settings.PARLA_HEALTH_WORKER_TIMEOUT_SECONDS = 0.2  # a worker may or may not run in this session

    response = APIClient().get("/health?deep=1")

    assert response.status_code in (200, 503)
    assert "worker" in response.json()["checks"]


def test_health_deep_behind_a_local_proxy_checks_the_forwarded_client(settings):
    import ipaddress

    settings.PARLA_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]

    response = APIClient().get("/health?deep=1", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert response.status_code == 403
