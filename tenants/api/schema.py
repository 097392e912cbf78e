"""OpenAPI descriptions of Parla's credentials (imported by TenantsConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "ApiKey"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>`; `X-API-Key: <key>` works too.",
        }


class TenantSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.TenantSessionAuthentication"
    name = "Session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def strip_trailing_slashes(endpoints):
    """Routes accept an optional trailing slash; document the canonical form without it."""
    return [
        (path.rstrip("/") if path != "/" else path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]


# Answers any authenticated endpoint can give, whatever it does.
_COMMON_ERRORS = {
    "400": "validation_error or parse_error: the request is malformed; `extra.fields` names the fields.",
    "401": "not_authenticated, invalid_api_key or api_key_revoked.",
    "403": "insufficient_scope, tenant_suspended or permission_denied.",
    "429": "rate_limited (requests per minute), quota_exceeded or concurrency_limit_exceeded; see Retry-After.",
}
_DETAIL_ERRORS = {"404": "not_found: no such object for this tenant (other tenants' ids answer the same)."}
_BODY_ERRORS = {"415": "unsupported_media_type: the body is not in a content type this endpoint reads."}


def _error_components() -> dict:
    from tenants.errors import ErrorCode

    return {
        "Error": {
            "type": "object",
            "description": "The one error shape of the Parla API.",
            "properties": {
                "code": {"type": "string", "enum": [code.value for code in ErrorCode],
                         "description": "Stable machine-readable code."},
                "message": {"type": "string", "description": "What went wrong, in plain language."},
                "extra": {"type": "object", "additionalProperties": True,
                          "description": "Details: fields with errors, limits, retry times..."},
            },
            "required": ["code", "message", "extra"],
        },
        "OpenAIError": {
            "type": "object",
            "description": "OpenAI's error shape, used on /v1/ paths.",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": {"type": "string", "nullable": True},
                        "code": {"type": "string", "nullable": True},
                    },
                    "required": ["message", "type"],
                },
            },
            "required": ["error"],
        },
    }


def document_errors(result, generator, request, public):
    """Give every operation the error responses it can really give, in the error shape."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.update(_error_components())
    for path, operations in result.get("paths", {}).items():
        shape = "OpenAIError" if path.startswith("/v1/") else "Error"
        content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}}
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = dict(_COMMON_ERRORS)
            if "{" in path:
                wanted.update(_DETAIL_ERRORS)
            if "requestBody" in operation:
                wanted.update(_BODY_ERRORS)
            for status, description in wanted.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "content" not in response:
                    response["content"] = content
    return result
