"""The OpenAPI document and its two readers, served without any network."""

import re

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_schema_documents_every_endpoint_and_error_code(client):
    from tenants.errors import ErrorCode

    response = client.get("/api/schema")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    paths = set(document["paths"])
    assert {"/api/v1/speech", "/api/v1/speech/stream", "/api/v1/jobs", "/api/v1/jobs/{id}",
            "/api/v1/jobs/{id}/audio", "/v1/audio/speech", "/api/v1/engines", "/api/v1/languages",
            "/api/v1/voices/{id}/preview", "/api/v1/batches", "/api/v1/batches/{id}/export"} <= paths
    codes = set(document["components"]["schemas"]["Error"]["properties"]["code"]["enum"])
    assert codes == {code.value for code in ErrorCode}
    speech = document["paths"]["/api/v1/speech"]["post"]
    assert {"200", "202", "400", "401", "403", "409", "429"} <= set(speech["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in speech["parameters"])


@pytest.mark.parametrize("url", ["/api/docs", "/api/redoc"])
def test_docs_pages_load_their_assets_locally(client, url):
    response = client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema" in html
    external = [src for src in re.findall(r'(?:src|href)="([^"]+)"', html) if src.startswith(("http:", "https:", "//"))]
    assert external == []
