"""Where a webhook may be sent: never, by default, to the gateway's own network.

Anyone who may create jobs chooses a webhook URL, and the gateway calls it from inside the
deployment: without a check, that is a way to reach loopback services, the cluster's private
addresses or a cloud's metadata endpoint (SSRF). A destination is allowed when every address its
host resolves to is globally routable, or when an operator lists the host
(`GATEWAY_WEBHOOK_ALLOWED_HOSTS`, for receivers inside the network).

The host is resolved by the system resolver, so every spelling of an address it accepts
(decimal `2130706433`, octal `0177.0.0.1`, hex, `127.1`) is judged by the address it really
names; an IPv6 address that carries an IPv4 one (mapped, compatible, translated, NAT64, 6to4) is
judged by that IPv4 address too, and site-local and Teredo addresses are refused.
Delivery resolves again, checks again, and connects to
the checked address itself (the name goes in `Host` and TLS SNI), so a name that re-resolves
elsewhere between check and connect (DNS rebinding) reaches nothing; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from weavewave_common.errors import InvalidInput

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class DestinationRefused(InvalidInput):
    """A webhook URL the gateway will not call."""

    code = "webhook_not_allowed"


@dataclass(frozen=True)
class Destination:
    """A checked webhook target: connect to `address`, speak to `host`."""

    url: str
    """The URL to request, with the checked address in place of the host."""
    host: str
    address: str
    host_header: str
    """`Host` as the URL named it (with its port, when not the scheme's default)."""


IPV4_CARRIERS = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated)
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # NAT64, local use
)
"""IPv6 ranges whose last 32 bits are an IPv4 address a packet is delivered to."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4,
    Teredo's server), which is where a connection to it ends up; None for a native one."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[0]
    if any(address in carrier for carrier in IPV4_CARRIERS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _public(address: IPAddress) -> bool:
    """Globally routable by the IANA special-purpose registries (as `ipaddress` keeps them),
    judged on the IPv4 address an IPv6 one carries, where it carries one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local or address.teredo is not None:
            return False  # site-local: routed inside some networks; Teredo: a tunnel inward
        carried = embedded_ipv4(address)
        if carried is not None and not _public(carried):
            return False
    return address.is_global and not address.is_multicast


def _address_url(scheme: str, address: str, port: int | None, rest: str) -> str:
    shown = f"[{address}]" if ":" in address else address
    return f"{scheme}://{shown}{f':{port}' if port else ''}{rest}"


class DestinationPolicy:
    def __init__(self, allowed_hosts: list[str], resolve: Resolver = system_resolver) -> None:
        self._allowed = frozenset(host.strip().lower().strip("[]") for host in allowed_hosts)
        self._resolve = resolve

    async def check(self, url: str) -> Destination:
        """The destination to call for `url`, or `DestinationRefused` (a 422) saying why."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused("webhook_url: an http(s) URL with a host.")
        if parts.username is not None or parts.password is not None:
            raise DestinationRefused("webhook_url: no credentials in the URL.")
        try:
            port = parts.port
        except ValueError as exc:
            raise DestinationRefused("webhook_url: the port is not a number.") from exc
        host = parts.hostname.lower()
        try:
            addresses = await self._resolve(host, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"webhook_url: {host} does not resolve.") from exc
        if not addresses:
            raise DestinationRefused(f"webhook_url: {host} does not resolve.")
        parsed = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
        if host not in self._allowed and not all(_public(a) for a in parsed):
            raise DestinationRefused(
                f"webhook_url: {host} is a private, loopback or link-local address; "
                "an operator may allow it in GATEWAY_WEBHOOK_ALLOWED_HOSTS."
            )
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        address = str(parsed[0])
        shown = f"[{host}]" if ":" in host else host
        host_header = f"{shown}:{port}" if port else shown
        url = _address_url(parts.scheme, address, port, rest)
        return Destination(url, host, address, host_header)
