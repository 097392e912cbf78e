"""Dramatiq wiring: explicit limits on every actor, Parla's queues, and a real worker process."""

import os

import dramatiq
import pytest
from rest_framework.test import APIClient

from config.dramatiq import QUEUES, parla_actor
from tests.helpers import start_manage, stop


def _parla_actors():
    broker = dramatiq.get_broker()
    return [broker.get_actor(name) for name in broker.actors
            if broker.get_actor(name).fn.__module__.split(".")[0] in
            {"tenants", "voices", "synthesis", "batches", "analytics"}]


def test_every_actor_sets_its_time_limit_and_retries_explicitly():
    actors = _parla_actors()

    assert actors
    for actor in actors:
        assert "time_limit" in actor.options and "max_retries" in actor.options, actor.actor_name
        assert actor.queue_name in QUEUES


def test_parla_actor_refuses_unknown_queues_and_missing_limits():
    with pytest.raises(ValueError, match="Unknown queue"):
        parla_actor(queue_name="synthesis", time_limit_ms=1000, max_retries=0)
    with pytest.raises(TypeError):
        parla_actor(queue_name="default")  # type: ignore[call-arg]


def test_broker_declares_parlas_queues_with_explicit_broker_limits():
    broker = dramatiq.get_broker()
    middleware = {type(m).__name__: m for m in broker.middleware}

    assert set(QUEUES) <= broker.get_declared_queues()
    assert middleware["TimeLimit"].time_limit == 10 * 60 * 1000
    assert middleware["Retries"].max_retries == 3
    assert "DbConnectionsMiddleware" in middleware


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_consumes_the_redis_queue(tmp_path, settings):
    settings.PARLA_HEALTH_WORKER_TIMEOUT_SECONDS = 60
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    worker = start_manage(
        "rundramatiq", "--processes", "1", "--threads", "1", "--queues", "default",
        env=env, log_path=tmp_path / "worker.log",
    )
    try:
        response = APIClient().get("/health", {"deep": 1})
    finally:
        stop(worker)

    assert response.status_code == 200, (response.json(), (tmp_path / "worker.log").read_text())
    assert response.json()["checks"]["worker"]["ok"] is True


def test_health_deep_without_a_worker_is_503(settings, db):
    settings.PARLA_HEALTH_WORKER_TIMEOUT_SECONDS = 0.5

    response = APIClient().get("/health", {"deep": 1})

    assert response.status_code == 503
    assert "no worker answered" in response.json()["checks"]["worker"]["error"]
