"""Which address a request really comes from.

The socket peer, unless the peer is a trusted proxy: then `X-Forwarded-For` is read from the right,
skipping trusted hops, and the first untrusted address is the client. Entries a client wrote itself
(further left) are never believed. IPv4-mapped IPv6 addresses are reported as IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse addresses or CIDR ranges; raises ValueError naming the bad entry."""
    networks: list[IPNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR range: {entry!r}") from exc
    return tuple(networks)


def parse_ip(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.9:1234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIPResolver:
    def __init__(self, trusted_proxies: Iterable[str], cache_size: int = 4096) -> None:
        self._trusted = parse_networks(trusted_proxies)
        # Peer -> (parsed address, its text, is a trusted proxy). Most traffic comes from few peers.
        self._peers: dict[str, tuple[IPAddress | None, str, bool]] = {}
        self._cache_size = cache_size

    def _peer(self, peer: str) -> tuple[IPAddress | None, str, bool]:
        known = self._peers.get(peer)
        if known is None:
            address = parse_ip(peer)
            text = str(address) if address is not None else peer
            known = (address, text, address is not None and self._is_trusted(address))
            if len(self._peers) >= self._cache_size:
                self._peers.clear()
            self._peers[peer] = known
        return known

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: list[str]) -> str:
        if not peer:
            return "unknown"
        peer_ip, peer_text, trusted = self._peer(peer)
        if peer_ip is None or not trusted:
            return peer_text
        hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
        client = peer_ip
        for hop in reversed(hops):
            hop_ip = parse_ip(hop)
            if hop_ip is None:
                break  # garbage from further left cannot be trusted; keep the last good hop
            client = hop_ip
            if not self._is_trusted(hop_ip):
                break
        return str(client)
