"""Which addresses a media fetch may reach: public ones, and an explicit allow-list.

Every media URL comes from a stranger (a platform listing, an uploader's post), so without
this check the scorer is an open proxy into the network it runs in: ``http://10.0.0.5/admin``,
the cloud metadata service at ``169.254.169.254``, the worker's own ``127.0.0.1:6066``. The
guard resolves the host name and refuses the URL unless every address it resolves to is
globally routable or inside a network the operator allowed on purpose (tests and the demo
platform run on 127.0.0.1). ``fetch_media`` calls it before each request, redirects included,
so a public URL that redirects inward is refused at the hop.

Checking all resolved addresses (not just the first) closes the simple case of a name that
resolves to both a public and a private address. A name whose DNS answer changes between the
check and the connection (DNS rebinding: public when asked, private a moment later) is closed by
``guarded_client``: its connections resolve and check the name themselves, at connect time,
and go to the very address that passed, never to a second answer. TLS still verifies the
certificate against the name, since only the TCP destination is pinned. A proxy or a network
policy that drops private destinations remains good defence in depth.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from monitor.media.fetch import fetch_error

__all__ = [
    "AddressGuard",
    "PinnedBackend",
    "Resolver",
    "guarded_client",
    "networks_of",
    "refusal",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Host and port to the addresses a connection could go to."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def networks_of(url: str) -> list[str]:
    """The addresses ``url``'s host resolves to now, as single-address networks for ``allow``."""
    host = httpx.URL(url).host
    try:
        found = [ipaddress.ip_address(host)]
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return sorted({f"{address}/{address.max_prefixlen}" for address in found})


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or ``None`` if it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner)
            return f"{why} (inside {address})" if why else None
    for test, why in (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata lives here)"),
        (address.is_private, "private"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
    ):
        if test:
            return f"{address} is {why}"
    if not address.is_global:
        return f"{address} is not globally routable"
    return None


class AddressGuard:
    """A ``validate_url`` hook for ``fetch_media``: refuses non-public destinations.

    ``allow`` holds networks (``127.0.0.1/32``, ``10.8.0.0/16``) or single addresses that may
    be fetched from even so. ``resolver`` turns a host into addresses; tests pass their own so
    that no packet is ever sent to the addresses under test.
    """

    def __init__(self, allow: Iterable[str] = (), resolver: Resolver = system_resolver) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in allow if entry.strip()
        )
        self.resolver = resolver

    def allowed(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allow)

    async def __call__(self, url: httpx.URL) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise fetch_error("bad_url", "only http and https URLs are fetched", url)
        await self.checked(url.host, url.port or (443 if url.scheme == "https" else 80), url)

    async def checked(self, host: str, port: int, url: str | httpx.URL) -> list[IPAddress]:
        """The addresses ``host`` resolves to, all of them allowed; else a ``FetchError``."""
        addresses = await self._addresses(host, port, url)
        for address in addresses:
            why = refusal(address)
            if why is not None and not self.allowed(address):
                raise fetch_error("refused", f"{host}: {why}; not fetched", url)
        return addresses

    async def _addresses(self, host: str, port: int, url: str | httpx.URL) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        try:
            resolved = await self.resolver(host, port)
        except OSError as exc:
            raise fetch_error("network", f"{host} does not resolve ({exc})", url) from None
        if not resolved:
            raise fetch_error("network", f"{host} resolves to no address", url)
        return [ipaddress.ip_address(item.split("%")[0]) for item in resolved]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, except that a TCP connection goes only to an address the
    guard checked for this very connection."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend) -> None:
        self.guard = guard
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.guard.checked(host, port, f"{host}:{port}")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # checked() returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("media are not fetched over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(guard: AddressGuard, **options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose connections are pinned to addresses ``guard`` passed."""
    transport = httpx.AsyncHTTPTransport()
    pool = transport._pool  # httpx gives no public way to plug a network backend in
    if not isinstance(pool, httpcore.AsyncConnectionPool):  # a proxy from the environment
        raise TypeError(f"cannot pin connections made through {type(pool).__name__}")
    pool._network_backend = PinnedBackend(guard, pool._network_backend)
    return httpx.AsyncClient(transport=transport, **options)
