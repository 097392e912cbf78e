"""The client's address, the one thing rate limits, audit events and operator endpoints trust.

A request's TCP peer (REMOTE_ADDR) is the client unless it is one of PARLA_TRUSTED_PROXIES.
Only then is X-Forwarded-For read, from the right: each trusted proxy appends the address it
received the request from, so the right-most entry that is not itself a trusted proxy is the
client. Everything left of it was written by the client and proves nothing.

This module imports nothing from the apps, so every layer may use it.
"""

import ipaddress

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def address_parse(value: str) -> IPAddress | None:
    """An address as a proxy or the server reports it; IPv4-mapped IPv6 becomes plain IPv4."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    return address


def address_in(address: IPAddress | str | None, networks) -> bool:
    if isinstance(address, str):
        address = address_parse(address)
    if address is None:
        return False
    return any(address in network for network in networks if network.version == address.version)


def is_loopback(address: IPAddress | str | None) -> bool:
    return address_in(address, LOOPBACK)


def _trusted_proxies() -> tuple[IPNetwork, ...]:
    return tuple(
        value if isinstance(value, IPNetwork) else ipaddress.ip_network(value, strict=False)
        for value in settings.PARLA_TRUSTED_PROXIES
    )


def client_address(request) -> str:
    """The client's IP address as a string, or "" when the server reported none it could parse."""
    peer = address_parse(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return ""
    proxies = _trusted_proxies()
    if not address_in(peer, proxies):
        # SECURITY: a client talking to us directly can write any X-Forwarded-For it likes.
        return str(peer)
    client = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = address_parse(hop)
        if address is None:
            break  # an entry no proxy would write: nothing further left can be trusted
        client = address
        if not address_in(address, proxies):
            break
    return str(client)


def ratelimit_client_ip(request) -> str:
    """django-ratelimit's key="ip" (RATELIMIT_IP_META_KEY): the client address above.

    A request without a usable address (a misconfigured socket setup) shares one budget
    rather than failing.
    """
    return client_address(request) or "0.0.0.0"
