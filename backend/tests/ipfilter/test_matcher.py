"""The compiled blacklist: correct for nested ranges, both families, mapped addresses, expiry."""

from __future__ import annotations

import ipaddress
import random

import pytest

from app.core.errors import UnprocessableError
from app.ipfilter.cache import BlockListCache, BlockRule
from app.ipfilter.service import parse_rule


def rule(rule_id: int, cidr: str, expires_at: float | None = None) -> BlockRule:
    return BlockRule(rule_id, ipaddress.ip_network(cidr), expires_at)


def test_nested_and_disjoint_ranges_in_both_families() -> None:
    blocklist = BlockListCache(
        [
            rule(1, "10.0.0.0/8"),
            rule(2, "10.1.0.0/16"),
            rule(3, "10.1.2.3/32"),
            rule(4, "192.0.2.0/24"),
            rule(5, "2001:db8::/32"),
            rule(6, "2001:db8:1::/48"),
        ]
    )
    assert blocklist.match("10.1.2.3").id == 3  # type: ignore[union-attr]
    assert blocklist.match("10.1.9.9").id == 2  # type: ignore[union-attr]
    assert blocklist.match("10.200.0.1").id == 1  # type: ignore[union-attr]
    assert blocklist.match("11.0.0.0") is None
    assert blocklist.match("192.0.2.255").id == 4  # type: ignore[union-attr]
    assert blocklist.match("192.0.3.0") is None
    assert blocklist.match("2001:db8:1::5").id == 6  # type: ignore[union-attr]
    assert blocklist.match("2001:db8:2::5").id == 5  # type: ignore[union-attr]
    assert blocklist.match("2001:db9::1") is None
    # IPv4-mapped IPv6 is the IPv4 address.
    assert blocklist.match("::ffff:10.1.2.3").id == 3  # type: ignore[union-attr]
    assert blocklist.match("not an address") is None


def test_matches_brute_force_on_10000_random_rules() -> None:
    rng = random.Random(7)
    rules = []
    networks = set()
    while len(rules) < 10_000:
        prefix = rng.choice([8, 12, 16, 20, 24, 28, 32])
        network = ipaddress.ip_network((rng.getrandbits(32), prefix), strict=False)
        if network not in networks:
            networks.add(network)
            rules.append(BlockRule(len(rules) + 1, network))
    blocklist = BlockListCache(rules)
    assert len(blocklist) == 10_000
    bounds = [(int(r.network.network_address), int(r.network.broadcast_address)) for r in rules]
    hits = 0
    for _ in range(1500):
        value = rng.getrandbits(32)
        covered = any(start <= value <= end for start, end in bounds)
        found = blocklist.match(str(ipaddress.ip_address(value)))
        if covered:
            hits += 1
            assert found is not None
            assert ipaddress.ip_address(value) in found.network
        else:
            assert found is None
    assert hits > 100  # the sample exercised both outcomes


def test_expired_rules_stop_matching_without_a_reload() -> None:
    now = [1000.0]
    blocklist = BlockListCache(
        [rule(1, "198.51.100.0/24", expires_at=1010.0), rule(2, "198.51.100.7/32")],
        clock=lambda: now[0],
    )
    assert blocklist.match("198.51.100.9") is not None
    now[0] = 1010.0
    assert blocklist.match("198.51.100.9") is None
    assert blocklist.match("198.51.100.7").id == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.7", "203.0.113.7/32"),
        (" 203.0.113.0/24 ", "203.0.113.0/24"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::ffff:10.1.2.3", "10.1.2.3/32"),
        ("::ffff:10.1.0.0/112", "10.1.0.0/16"),
    ],
)
def test_rules_are_stored_in_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_rule(text)) == canonical


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("300.1.1.1/8", "not an IP address"),
        ("10.0.0.1/8", "host bits set; the range it lies in is 10.0.0.0/8"),
        ("10.0.0.0/33", "not an IP address"),
        ("example.com", "not an IP address"),
    ],
)
def test_invalid_rules_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(UnprocessableError) as caught:
        parse_rule(text)
    assert fragment in caught.value.message
