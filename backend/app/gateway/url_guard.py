"""Where channel traffic (and its API key) may go.

Link-local and cloud metadata addresses are always refused — they are how a stolen request reads a
cloud machine's credentials. Loopback and private ranges are allowed by default (self-hosted Ollama and
vLLM live there) and refused when `allow_private` is off.

The guard judges exactly what the HTTP client will connect to:

- A base URL is parsed by the client's own URL parser (yarl, used by `http_client`), and what is stored
  is that parser's normalised form (IDNA host, lowercase). A host that only becomes an address by
  normalising (169.254.169.254 written with full-width digits), a number in a form the standard IP
  syntax does not allow (`2852039166`, `0x7f.1`), or anything else that is not a plain host name or
  IP literal afterwards is refused rather than guessed at.
- One classifier (`check_address`) decides for every address, and sees through IPv6 addresses that
  carry an IPv4 one (mapped, compatible, SIIT, NAT64, 6to4, Teredo, ISATAP): the strictest verdict
  of the IPv6 address and each IPv4 inside it wins.
- It runs when a channel is saved, tested or asked for its models, and again on every connection:
  the HTTP client (`http_client`) judges the exact address of every connection it opens, IP
  literals included, after DNS, and refuses to open one to a refused address. A name that later
  resolves elsewhere (DNS rebinding) cannot get through.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import unicodedata
from typing import Any

from yarl import URL

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
        "240.0.0.0/4",  # reserved, and 255.255.255.255
    )
)
# Embedding prefixes whose IPv6 address is only a wrapper for the IPv4 address in its last 32 bits.
_LAST_32_BITS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "::/96",  # IPv4-compatible (deprecated): ::a.b.c.d
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT): ::ffff:0:a.b.c.d
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local-use prefix
    )
)
_LOOPBACK_AND_UNSPECIFIED = ipaddress.ip_network("::/127")  # not IPv4-compatible addresses
# ISATAP interface identifier (RFC 5214): …:0000:5efe:a.b.c.d or …:0200:5efe:a.b.c.d.
_ISATAP = re.compile(r"^(?:[0-9a-f]{4}:){4}0[02]00:5efe:")


class UpstreamAddressError(Exception):
    """The upstream address is not allowed. The message says why, without any secret."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries, by any of the standard embeddings."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    last_32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    wrapped = any(address in net for net in _LAST_32_BITS)
    if (wrapped and address not in _LOOPBACK_AND_UNSPECIFIED) or _ISATAP.match(address.exploded):
        found.append(last_32)
    return found


def _own_refusal(address: IPAddress, allow_private: bool) -> str | None:
    if any(address in net for net in ALWAYS_REFUSED if net.version == address.version):
        return f"{address} is a link-local, cloud metadata or reserved address and is never allowed"
    if not allow_private and not address.is_global:
        return f"{address} is a private or loopback address, and private upstreams are not allowed"
    return None


@functools.lru_cache(maxsize=4096)
def _refusal(address: IPAddress, allow_private: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        # A zone (`fe80::1%eth0`) does not change where the address is; Python 3.11's ipaddress
        # also cannot expand a scoped address, so judge it without.
        address = ipaddress.IPv6Address(int(address))
        for inner in embedded_ipv4(address):
            reason = _own_refusal(inner, allow_private)
            if reason is not None:
                return f"{address} carries {reason}"
    return _own_refusal(address, allow_private)


def check_address(address: IPAddress, *, allow_private: bool) -> None:
    """Raise `UpstreamAddressError` if traffic may not go to `address` (cached: called per call)."""
    reason = _refusal(address, allow_private)
    if reason is not None:
        raise UpstreamAddressError(reason)


def literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def upstream_host(url: str) -> str:
    """The host the HTTP client will connect to for `url`, as its own parser reads it."""
    try:
        return URL(url).raw_host or ""
    except (ValueError, TypeError):
        return ""


_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")


def _is_odd_numeric_host(host: str) -> bool:
    """A host written as a number the standard IP syntax does not allow (`2852039166`,
    `0xa9fea9fe`, `0251.0376.0251.0376`, `169.254.43518`). Resolvers read these as addresses, so
    they hide where a URL really points; no DNS name is all numbers."""
    if literal_ip(host) is not None:
        return False
    return all(_NUMERIC_LABEL.fullmatch(label) for label in host.rstrip(".").split("."))


def _has_foreign_digits(host: str) -> bool:
    """Digits other than ASCII 0-9 (full-width, Arabic-Indic …): normalising may turn them into an
    address; no real host name needs them."""
    return any(not ("0" <= ch <= "9") and unicodedata.category(ch) == "Nd" for ch in host)


def normalise_base_url(url: str) -> str:
    """Validate a channel base URL; return the client's normalised form without a trailing slash.

    Raises ValueError with a message for the person who typed it.
    """
    url = url.strip()
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise ValueError("Base URL cannot contain spaces or control characters")
    authority = re.split(r"[/?#]", url.split("://", 1)[-1], maxsplit=1)[0]
    if "@" in authority:  # even an empty user part, which the parser would drop silently
        raise ValueError("Put the API key in the key field, not in the URL")
    if "\\" in authority:
        raise ValueError("Base URL has a backslash in its host")
    try:
        parsed = URL(url)
        parsed.explicit_port  # noqa: B018 (raises ValueError for a bad port)
    except (ValueError, TypeError):
        raise ValueError("Base URL is not a valid URL (check the host and port)") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError("Base URL must start with http:// or https://")
    if not parsed.raw_host:
        raise ValueError("Base URL needs a host")
    if parsed.raw_query_string or parsed.raw_fragment or re.search(r"[?#]", url):
        raise ValueError("Base URL cannot have a query string or fragment")
    return _normalised(authority, parsed)


def _normalised(typed_authority: str, parsed: URL) -> str:
    """The parser's form of the URL, if its host came through normalisation cleanly."""
    host = parsed.raw_host or ""
    if _has_foreign_digits(typed_authority):
        raise ValueError(
            "Write the host with ASCII letters and digits"
            + (f" (it reads as {host})" if literal_ip(host) is not None else "")
        )
    if literal_ip(host) is None:
        if _is_odd_numeric_host(host):
            raise ValueError("Write an IP address in the usual dotted form (e.g. 10.0.0.5)")
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("Base URL's host is not a valid host name")
    return str(parsed).rstrip("/")


async def check_base_url(url: str, *, allow_private: bool) -> None:
    """Refuse a base URL whose host is, or resolves to, a refused address (when saving)."""
    host = upstream_host(url)
    literal = literal_ip(host)
    if literal is not None:
        check_address(literal, allow_private=allow_private)
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return  # unresolvable now; every connection is checked again after resolution
    for info in infos:
        check_address(_address_of(info[4]), allow_private=allow_private)


def _address_of(sockaddr: tuple[Any, ...]) -> IPAddress:
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
