import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _is_envelope(body) -> bool:
    return set(body) == {"code", "message", "extra"} and isinstance(body["message"], str)


def test_unknown_api_route_is_json_404():
    response = APIClient().get("/api/v1/does-not-exist")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert _is_envelope(response.json())


def test_unknown_page_outside_the_api_is_html_404():
    response = APIClient().get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_malformed_json_is_400_parse_error(api_client_for, tenant):
    response = api_client_for(tenant).post("/api/v1/keys", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert _is_envelope(response.json())


def test_wrong_content_type_is_415(api_client_for, tenant):
    response = api_client_for(tenant).post("/api/v1/keys", "name=x", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_wrong_method_is_405_in_the_envelope(api_client_for, tenant):
    response = api_client_for(tenant).delete("/api/v1/tenant")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert _is_envelope(response.json())


def test_validation_error_lists_fields(api_client_for, tenant):
    response = api_client_for(tenant).post("/api/v1/keys", {"name": ""}, format="json")

    assert response.status_code == 400
    assert response.json()["message"].startswith("name:")
    assert list(response.json()["extra"]["fields"]) == ["name"]


def test_trailing_slash_is_optional(api_client_for, tenant):
    client = api_client_for(tenant)

    assert client.get("/api/v1/keys").status_code == 200
    assert client.get("/api/v1/keys/").status_code == 200


def test_error_codes_are_stable_snake_case():
    from tenants.errors import ErrorCode

    assert all(code.value == code.value.lower() and " " not in code.value for code in ErrorCode)
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)


def test_openapi_schema_documents_the_endpoints():
    response = APIClient().get("/api/schema", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/tenant", "/api/v1/keys", "/api/v1/keys/{id}"} <= set(paths)
