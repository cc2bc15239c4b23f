"""Where channel traffic (and its API key) may go.

Link-local and cloud metadata addresses are always refused — they are how a stolen request reads a
cloud machine's credentials. Loopback and private ranges are allowed by default (self-hosted Ollama and
vLLM live there) and refused when `allow_private` is off. The check runs when a channel is saved and
again on every connection, after DNS resolution, so a name that later resolves elsewhere (DNS
rebinding) cannot reach a refused address.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "169.254.0.0/16",  # IPv4 link-local, incl. 169.254.169.254 (AWS, GCP, Azure, Tencent, Huawei)
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",  # multicast
        "ff00::/8",
        "255.255.255.255/32",
    )
)
PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    )
)


class UpstreamAddressError(Exception):
    """The upstream address is not allowed. The message says why, without any secret."""


def _normalise(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)
def _refusal(address: IPAddress, allow_private: bool) -> str | None:
    address = _normalise(address)
    if any(address in net for net in ALWAYS_REFUSED):
        return f"{address} is a link-local or cloud metadata address and is never allowed"
    if not allow_private and any(address in net for net in PRIVATE):
        return f"{address} is a private or loopback address, and private upstreams are not allowed"
    return None


def check_address(address: IPAddress, *, allow_private: bool) -> None:
    """Raise `UpstreamAddressError` if traffic may not go to `address` (cached: called per call)."""
    reason = _refusal(address, allow_private)
    if reason is not None:
        raise UpstreamAddressError(reason)


_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def _is_odd_numeric_host(host: str) -> bool:
    """A host written as a number the standard IP syntax does not allow (`2852039166`,
    `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`). Resolvers read these as addresses, so
    they hide where a URL really points; no DNS name is all numbers."""
    if literal_ip(host) is not None:
        return False
    return all(_NUMERIC_LABEL.fullmatch(label) for label in host.rstrip(".").split("."))


def normalise_base_url(url: str) -> str:
    """Validate a channel base URL and return it without a trailing slash. Raises ValueError."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("Base URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("Base URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("Put the API key in the key field, not in the URL")
    if "\\" in parts.netloc:
        raise ValueError("Base URL has a backslash in its host")
    if _is_odd_numeric_host(parts.hostname):
        raise ValueError("Write an IP address in the usual dotted form (e.g. 10.0.0.5)")
    if parts.query or parts.fragment:
        raise ValueError("Base URL cannot have a query string or fragment")
    try:
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ValueError("Base URL has an invalid port") from None
    return url.rstrip("/")


def literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def check_base_url(url: str, *, allow_private: bool) -> None:
    """Refuse a base URL whose host is, or resolves to, a refused address (when saving)."""
    host = urlsplit(url).hostname or ""
    literal = literal_ip(host)
    if literal is not None:
        check_address(literal, allow_private=allow_private)
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return  # unresolvable now; every connection is checked again after resolution
    for info in infos:
        check_address(ipaddress.ip_address(info[4][0]), allow_private=allow_private)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that drops refused addresses; no usable address is a connection error."""

    def __init__(self, allow_private: Callable[[], bool]) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        reason = ""
        for result in results:
            try:
                check_address(
                    ipaddress.ip_address(result["host"]), allow_private=self._allow_private()
                )
            except UpstreamAddressError as exc:
                reason = str(exc)
            else:
                allowed.append(result)
        if not allowed:
            raise OSError(f"{host} resolves only to refused addresses: {reason}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
