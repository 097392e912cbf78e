"""GET /metrics: Prometheus text format, for operators only (see analytics.metrics).

Who may read it:
- PARLA_METRICS_TOKEN set: the request must send `Authorization: Bearer <token>`;
- PARLA_METRICS_ALLOWED_NETWORKS set: the client address must be in one of those networks;
- both set: both must hold; neither set: loopback clients only.
A client outside the networks gets 404 (the endpoint does not exist for it); one inside them
with a missing or wrong token gets 403. The address checked is the TCP peer's (REMOTE_ADDR),
never a forwarded header a client could write.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from analytics.metrics import metrics_render
from tenants.errors import ErrorCode, json_error_response

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def _client_in(networks: tuple[IPNetwork, ...], remote_addr: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    return any(address in network for network in networks if network.version == address.version)


def _token_matches(request) -> bool:
    expected = settings.PARLA_METRICS_TOKEN
    if not expected:
        return True
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@never_cache
def metrics(request):
    if not _client_in(_networks(), request.META.get("REMOTE_ADDR", "")):
        return json_error_response(ErrorCode.NOT_FOUND, "Not found.", 404)
    if not _token_matches(request):
        return json_error_response(ErrorCode.PERMISSION_DENIED, "A valid metrics token is required.", 403)
    if request.method not in ("GET", "HEAD"):
        response = json_error_response(ErrorCode.METHOD_NOT_ALLOWED, "Use GET.", 405)
        response["Allow"] = "GET, HEAD"
        return response
    body, content_type = metrics_render()
    return HttpResponse(body, content_type=content_type)
