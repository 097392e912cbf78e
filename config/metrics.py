"""GET /metrics: Prometheus text format, for operators only (see analytics.metrics).

Who may read it:
- PARLA_METRICS_TOKEN set: the request must send `Authorization: Bearer <token>`;
- PARLA_METRICS_ALLOWED_NETWORKS set: the client address must be in one of those networks;
- both set: both must hold; neither set: loopback clients only.
A client outside the networks gets 404 (the endpoint does not exist for it); one inside them
with a missing or wrong token gets 403. The address checked is the client's as
config.client_address finds it: the TCP peer (REMOTE_ADDR), or X-Forwarded-For only when the
peer is one of PARLA_TRUSTED_PROXIES.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from analytics.metrics import metrics_render
from config.client_address import LOOPBACK, IPNetwork, address_in, client_address
from tenants.errors import ErrorCode, json_error_response


def _networks() -> tuple[IPNetwork, ...]:
    configured = tuple(
        value if isinstance(value, IPNetwork) else ipaddress.ip_network(value, strict=False)
        for value in settings.PARLA_METRICS_ALLOWED_NETWORKS
    )
    if configured:
        return configured
    if settings.PARLA_METRICS_TOKEN:
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    return LOOPBACK


def metrics_token_presented(request) -> bool:
    """The request carries PARLA_METRICS_TOKEN (False when none is configured)."""
    expected = settings.PARLA_METRICS_TOKEN
    if not expected:
        return False
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@never_cache
def metrics(request):
    if not address_in(client_address(request), _networks()):
        return json_error_response(ErrorCode.NOT_FOUND, "Not found.", 404)
    if settings.PARLA_METRICS_TOKEN and not metrics_token_presented(request):
        return json_error_response(ErrorCode.PERMISSION_DENIED, "A valid metrics token is required.", 403)
    if request.method not in ("GET", "HEAD"):
        response = json_error_response(ErrorCode.METHOD_NOT_ALLOWED, "Use GET.", 405)
        response["Allow"] = "GET, HEAD"
        return response
    body, content_type = metrics_render()
    return HttpResponse(body, content_type=content_type)
