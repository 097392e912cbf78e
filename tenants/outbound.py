"""HTTP requests to URLs a tenant chooses (webhook receivers): which URLs are allowed, and a
POST that connects only to the address that was checked.

SECURITY: a tenant picks the URL, so without care Parla's own network would be theirs to probe
(server-side request forgery): loopback services (Redis, PostgreSQL), private networks, the cloud
metadata service at 169.254.169.254. So:

- the host is resolved once, and every address it resolves to must be globally routable
  (`is_global`; IPv4-mapped and other IPv6 forms that carry an IPv4 address are judged by that
  address), unless the operator allows private networks (PARLA_WEBHOOK_ALLOW_PRIVATE);
- the connection goes to that checked address, while the request keeps the original Host
  header and TLS checks the certificate against the original name (SNI included). Resolving
  again when connecting would let a name answer a public address to the check and 127.0.0.1 to
  the connection (DNS rebinding);
- only ports 80 and 443, plus those the operator lists (PARLA_WEBHOOK_ALLOWED_PORTS);
- no redirects, no proxies or credentials from the environment, and the response body is never
  read;
- what the tenant learns of a failure is a generic class ("connection refused", "timeout"),
  never the exception text, which could describe the inside of the network.
"""

import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from tenants.errors import ApplicationError, ErrorCode

logger = logging.getLogger(__name__)

DEFAULT_PORTS = frozenset({80, 443})
# The header that carries a webhook's HMAC signature (batches.webhooks signs; the tenant's
# webhook settings name it to the tenant).
SIGNATURE_HEADER = "X-Parla-Signature"
# IPv6 prefixes that carry an IPv4 address a gateway may translate to (RFC 6052 NAT64).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

# Reasons a URL is refused; the delivery log shows them as they are.
INVALID_URL = "invalid URL"
ADDRESS_NOT_ALLOWED = "address not allowed"
PORT_NOT_ALLOWED = "port not allowed"
DNS_FAILED = "DNS lookup failed"


class WebhookUrlNotAllowed(ApplicationError):
    code = ErrorCode.WEBHOOK_URL_NOT_ALLOWED
    status = 400

    def __init__(self, message: str, *, reason: str, field: str) -> None:
        super().__init__(message, extra={"fields": {field: [message]}})
        self.reason = reason


@dataclass(frozen=True)
class PinnedTarget:
    """A checked receiver: the URL as given, and the only addresses to connect to."""

    url: str
    scheme: str
    hostname: str  # ASCII (IDNA) form; for the Host header and the certificate check
    port: int
    addresses: tuple[str, ...]  # every one checked; tried in the resolver's order
    is_literal: bool  # the URL names an IP address itself

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def connect_url(self, address: str) -> str:
        """The URL with a checked address in place of the name (path and query kept)."""
        if self.is_literal:
            return self.url
        parts = urlsplit(self.url)
        address = f"[{address}]" if ":" in address else address
        path = parts.path or "/"
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.scheme}://{address}:{self.port}{path}{query}"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(address: str) -> bool:
    """Whether a receiver may be at this address (an IP literal, IPv4 or IPv6)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6:
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not address_allowed(str(embedded)):
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # Judged as the IPv4 address it is.
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
        # Never, not even on intranets: 0.0.0.0 reaches this host, and link-local holds the
        # cloud metadata service.
        return False
    return ip.is_global or settings.PARLA_WEBHOOK_ALLOW_PRIVATE


def allowed_ports() -> frozenset[int]:
    return DEFAULT_PORTS | frozenset(settings.PARLA_WEBHOOK_ALLOWED_PORTS)


def resolve_host(hostname: str, port: int) -> list[str]:
    """The addresses a name resolves to, in the resolver's order (raises OSError)."""
    infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def webhook_target_resolve(url: str, *, field: str = "webhook_url") -> PinnedTarget:
    """Check a receiver URL and resolve its host once; raises WebhookUrlNotAllowed."""

    def refuse(message: str, reason: str) -> WebhookUrlNotAllowed:
        return WebhookUrlNotAllowed(message, reason=reason, field=field)

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("Not a valid URL.", INVALID_URL) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refuse("Webhook URLs must be http:// or https:// URLs with a host.", INVALID_URL)
    if parts.username is not None or parts.password is not None:
        raise refuse("Webhook URLs must not carry credentials (user:password@).", INVALID_URL)
    port = port or (443 if parts.scheme == "https" else 80)
    if port not in allowed_ports():
        *others, last = map(str, sorted(allowed_ports()))
        raise refuse(f"Webhook receivers must use port {', '.join(others)} or {last}.", PORT_NOT_ALLOWED)
    hostname = parts.hostname
    try:
        literal = ipaddress.ip_address(hostname.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [hostname]
    else:
        try:
            hostname = hostname.rstrip(".").encode("idna").decode("ascii")
            addresses = resolve_host(hostname, port)
        except (OSError, UnicodeError):
            raise refuse(f"The webhook host {parts.hostname!r} does not resolve.", DNS_FAILED) from None
        if not addresses:
            raise refuse(f"The webhook host {parts.hostname!r} does not resolve.", DNS_FAILED)
    # SECURITY: every answer must pass, not just the first: a mixed answer is a rebinding tell.
    if not all(address_allowed(address) for address in addresses):
        raise refuse(
            f"The webhook host {parts.hostname!r} resolves to a private, loopback or otherwise "
            "non-public address; only publicly routable receivers are allowed.",
            ADDRESS_NOT_ALLOWED,
        )
    return PinnedTarget(url=url, scheme=parts.scheme, hostname=hostname, port=port, addresses=tuple(addresses),
                        is_literal=literal is not None)


def webhook_url_validate(url: str, *, field: str = "webhook_url") -> str:
    """Refuse a receiver URL Parla must not call (400, with the field's error). Checked when
    the URL is given and again at each delivery, since DNS can change in between."""
    webhook_target_resolve(url, field=field)
    return url


def _pinned_session(target: PinnedTarget):
    import requests
    from requests.adapters import HTTPAdapter

    class PinnedAdapter(HTTPAdapter):
        """Connects to the checked address; TLS sends SNI and checks the certificate for the
        original name (urllib3's server_hostname, which Python's ssl matches natively)."""

        def build_connection_pool_key_attributes(self, request, verify, cert=None):
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
            if host_params["scheme"] == "https" and not target.is_literal:
                pool_kwargs["server_hostname"] = target.hostname
            return host_params, pool_kwargs

    session = requests.Session()
    session.trust_env = False  # No HTTP(S)_PROXY, no .netrc credentials: the pin must hold.
    session.mount("http://", PinnedAdapter(max_retries=0))
    session.mount("https://", PinnedAdapter(max_retries=0))
    return session


def pinned_post(target: PinnedTarget, *, data: bytes, headers: dict[str, str], timeout: float):
    """POST to the checked addresses only: the next one when a connection cannot be opened (an
    IPv6 answer on a host without IPv6), never after a request was sent. The response's body
    is not read: status only."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError

    with _pinned_session(target) as session:
        for position, address in enumerate(target.addresses, start=1):
            try:
                response = session.post(
                    target.connect_url(address),
                    data=data,
                    headers={**headers, "Host": target.host_header},
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                # urllib3's ConnectTimeoutError covers a failed connect (NewConnectionError) too.
                not_connected = any(isinstance(cause, ConnectTimeoutError) for cause in _causes(exc))
                if not_connected and position < len(target.addresses):
                    continue
                raise
            response.close()
            return response
    raise AssertionError("unreachable: a target has at least one address")


def _causes(exc: BaseException):
    """The exception and everything it wraps (requests → urllib3 → socket/ssl errors)."""
    seen, pending = set(), [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])


def delivery_error_class(exc: BaseException) -> str:
    """A generic name for a failed attempt, safe to show the tenant."""
    import requests

    if isinstance(exc, WebhookUrlNotAllowed):
        return exc.reason
    causes = list(_causes(exc))
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in causes):
        return "TLS error"
    if isinstance(exc, requests.exceptions.Timeout) or any(isinstance(c, TimeoutError) for c in causes):
        return "timeout"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "connection reset"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection error"
    return "request failed"
