from __future__ import annotations

import pytest

from app.core.client_ip import ClientIPResolver, parse_networks


@pytest.mark.parametrize(
    ("trusted", "peer", "xff", "expected"),
    [
        # No trusted proxies: the header is ignored, whatever it says.
        ([], "198.51.100.7", ["1.2.3.4"], "198.51.100.7"),
        # Untrusted peer: the header is ignored.
        (["10.0.0.0/8"], "198.51.100.7", ["1.2.3.4"], "198.51.100.7"),
        # Trusted peer: the rightmost untrusted entry is the client; spoofed entries to its left lose.
        (["10.0.0.0/8"], "10.0.0.2", ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
        # Several trusted hops are skipped.
        (["10.0.0.0/8"], "10.0.0.2", ["203.0.113.9, 10.0.0.7, 10.0.0.3"], "203.0.113.9"),
        # Repeated headers are read as one list.
        (["10.0.0.0/8"], "10.0.0.2", ["203.0.113.9", "10.0.0.3"], "203.0.113.9"),
        # Every hop trusted: the leftmost is the best we know.
        (["10.0.0.0/8"], "10.0.0.2", ["10.1.1.1, 10.0.0.3"], "10.1.1.1"),
        # Garbage in the chain stops the walk at the last good hop.
        (["10.0.0.0/8"], "10.0.0.2", ["not-an-ip, 10.0.0.3"], "10.0.0.3"),
        # Trusted peer but no header: the peer.
        (["10.0.0.0/8"], "10.0.0.2", [], "10.0.0.2"),
        # IPv4-mapped IPv6 peers and entries are reported as IPv4.
        ([], "::ffff:198.51.100.7", [], "198.51.100.7"),
        (["::1"], "::1", ["::ffff:203.0.113.9"], "203.0.113.9"),
        # IPv6 with ports and brackets.
        (["2001:db8::/32"], "2001:db8::1", ["[2001:db8:ffff::1]:443, 2a00::5"], "2a00::5"),
        (["127.0.0.1"], "127.0.0.1", ["203.0.113.9:5555"], "203.0.113.9"),
    ],
)
def test_client_ip_resolution(trusted: list[str], peer: str, xff: list[str], expected: str) -> None:
    assert ClientIPResolver(trusted).resolve(peer, xff) == expected


def test_missing_peer_is_reported_as_unknown() -> None:
    assert ClientIPResolver([]).resolve(None, ["1.2.3.4"]) == "unknown"


def test_bad_trusted_proxy_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks(["10.0.0.0/8", "10.0.0.300"])
