"""GET /api/v1/engines and /api/v1/languages: the installation's engines (with live worker
state read from heartbeats) and languages. Piper and Kokoro are enabled (the default)."""

import pytest

from config.runtime.presence import worker_forget, worker_heartbeat, workers_alive
from synthesis.engines import registry
from synthesis.engines.registry import catalog_voices
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def heartbeat():
    """Publish worker heartbeats as a running worker would; forget them afterwards.

    Starts from no workers: a heartbeat left by a worker another module killed is dropped.
    """
    for worker in workers_alive():
        worker_forget(worker_id=worker["id"])
    published = []

    def publish(worker_id: str, *, queues: list[str], engines_loaded: list[str]) -> None:
        worker_heartbeat(worker_id=worker_id, info={
            "queues": queues, "engines_loaded": engines_loaded, "device": "cpu", "host": "test", "pid": 0,
        })
        published.append(worker_id)

    yield publish
    for worker_id in published:
        worker_forget(worker_id=worker_id)


@pytest.fixture
def with_xtts(settings):
    """XTTS enabled without its weights: listed (a GPU engine, no catalog voices), never loaded here."""
    settings.PARLA_ENGINES = ["piper", "kokoro", "xtts"]
    registry.reset_engines()
    yield
    registry.reset_engines()


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["name"]: row for row in rows}


def test_engines_lists_each_enabled_engine_with_its_facts(api_client_for):
    client = api_client_for(TenantFactory())

    response = client.get("/api/v1/engines")

    assert response.status_code == 200
    engines = _by_name(response.json()["results"])
    assert set(engines) == {"piper", "kokoro"}
    piper = engines["piper"]
    assert piper["languages"] == ["en-US"]
    assert piper["sample_rate"] == 22050
    assert (piper["can_clone"], piper["needs_gpu"]) == (False, False)
    assert piper["model_version"].startswith("piper")
    assert piper["licence"] == {"name": "CC0-1.0", "commercial_use": True,
                                "url": "https://creativecommons.org/publicdomain/zero/1.0/"}
    assert engines["kokoro"]["licence"]["name"] == "Apache-2.0"


def test_engines_without_workers_are_not_loaded_and_have_no_workers(api_client_for):
    client = api_client_for(TenantFactory())

    engines = _by_name(client.get("/api/v1/engines").json()["results"])

    assert {(row["loaded"], row["workers"]) for row in engines.values()} == {(False, 0)}


def test_engines_reads_loaded_models_and_worker_counts_from_heartbeats(api_client_for, heartbeat):
    client = api_client_for(TenantFactory())
    heartbeat("cpu-1", queues=["default", "synthesis-cpu"], engines_loaded=["piper"])
    heartbeat("cpu-2", queues=["synthesis-cpu"], engines_loaded=[])
    heartbeat("gpu-1", queues=["synthesis-gpu"], engines_loaded=[])

    engines = _by_name(client.get("/api/v1/engines").json()["results"])

    assert (engines["piper"]["loaded"], engines["piper"]["workers"]) == (True, 2)
    # Kokoro runs on CPU: the GPU worker does not count, and no worker has loaded it yet.
    assert (engines["kokoro"]["loaded"], engines["kokoro"]["workers"]) == (False, 2)


def test_engines_count_gpu_workers_for_a_gpu_engine(api_client_for, heartbeat, with_xtts):
    client = api_client_for(TenantFactory())
    heartbeat("cpu-1", queues=["synthesis-cpu"], engines_loaded=["piper"])
    heartbeat("gpu-1", queues=["synthesis-gpu"], engines_loaded=["xtts"])

    engines = _by_name(client.get("/api/v1/engines").json()["results"])

    xtts = engines["xtts"]
    assert (xtts["needs_gpu"], xtts["can_clone"], xtts["loaded"], xtts["workers"]) == (True, True, True, 1)
    assert xtts["licence"]["commercial_use"] is False
    assert engines["piper"]["workers"] == 1


def test_languages_include_those_an_engine_declares_without_catalog_voices(api_client_for, with_xtts):
    client = api_client_for(TenantFactory())

    rows = {row["code"]: row for row in client.get("/api/v1/languages").json()["results"]}

    assert rows["de"] == {"code": "de", "engines": ["xtts"], "voice_count": 0}
    assert rows["en-US"]["engines"] == ["kokoro", "piper"]


def test_engines_forget_a_worker_that_stopped(api_client_for, heartbeat):
    client = api_client_for(TenantFactory())
    heartbeat("cpu-1", queues=["synthesis-cpu"], engines_loaded=["piper"])
    worker_forget(worker_id="cpu-1")

    piper = _by_name(client.get("/api/v1/engines").json()["results"])["piper"]

    assert (piper["loaded"], piper["workers"]) == (False, 0)


def test_languages_lists_engines_and_catalog_voice_counts(api_client_for):
    client = api_client_for(TenantFactory())

    response = client.get("/api/v1/languages/")

    assert response.status_code == 200
    rows = {row["code"]: row for row in response.json()["results"]}
    assert rows["en-US"]["engines"] == ["kokoro", "piper"]
    assert rows["en-US"]["voice_count"] == sum(1 for voice in catalog_voices() if voice.language == "en-US")
    assert rows["en-US"]["voice_count"] >= 2


@pytest.mark.parametrize("path", ["/api/v1/engines", "/api/v1/languages"])
def test_catalog_answers_any_key_of_the_tenant(api_client_for, path):
    client = api_client_for(TenantFactory(), scopes=["usage"])

    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/engines", "/api/v1/languages"])
def test_catalog_needs_a_key(client, path):
    response = client.get(path)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_catalog_is_in_the_openapi_schema(client):
    paths = client.get("/api/schema", HTTP_ACCEPT="application/json").json()["paths"]

    assert paths["/api/v1/engines"]["get"]["tags"] == ["catalog"]
    assert paths["/api/v1/languages"]["get"]["tags"] == ["catalog"]
    assert paths["/v1/audio/speech"]["post"]["tags"] == ["openai"]
