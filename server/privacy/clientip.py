"""The client's IP address, made less precise before anything is derived from it.

Touchpoint stores no IP address and logs none. Whatever looks something up by address (a
country for an audience condition, say) takes it from :func:`usable_ip`, never from the request
directly: with the ``ip_handling`` setting ``truncate`` (the default) it sees the network, IPv4
to /24 and IPv6 to /48, which still places a visitor in their country (address blocks are
allocated in far larger units) but no longer names one household's connection; with ``drop`` it
sees nothing. The in-memory rate limit (web/limits.py) is the one user of the full address:
a bucket per address, kept only while it refills.
"""

from __future__ import annotations

import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 48
HANDLING = ("truncate", "drop")


def truncate_ip(ip: str) -> str | None:
    """The address with its host part zeroed: ``203.0.113.77`` -> ``203.0.113.0``,
    ``2001:db8:1234:5678::1`` -> ``2001:db8:1234::``. An IPv4 address written as IPv6
    (``::ffff:203.0.113.77``, as dual-stack sockets report it) becomes the IPv4 network.
    None when ``ip`` is not an address (a Unix socket path, ``testclient``, garbage)."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is None:
            network = ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False)
            return str(network.network_address)
        address = mapped
    return str(ipaddress.IPv4Network((address, IPV4_PREFIX), strict=False).network_address)


def usable_ip(ip: str | None, *, handling: str) -> str | None:
    """What may be derived from the client address ``ip`` under ``handling`` (the
    ``ip_handling`` setting): its truncated form, or None."""
    if handling not in HANDLING:
        raise ValueError(f"ip_handling must be one of {', '.join(HANDLING)}")
    if handling == "drop" or not ip:
        return None
    return truncate_ip(ip)
