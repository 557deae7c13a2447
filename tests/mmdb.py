"""A small writer of MaxMind DB files, so tests need neither a download nor a writer package.

The format (https://maxmind.github.io/MaxMind-DB/): a binary search tree over the address bits
(IPv6, IPv4 mapped at ``::/96``), 24-bit records; 16 zero bytes; a data section; then the
metadata map after the marker ``\\xab\\xcd\\xefMaxMind.com``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def encode(value: Any) -> bytes:
    """One value in the MaxMind DB data format."""
    if isinstance(value, str):
        return _control(2, len(value.encode())) + value.encode()
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, UInt):
        data = value.value.to_bytes(8, "big").lstrip(b"\0")
        return _control(value.kind, len(data)) + data
    raise TypeError(value)


@dataclass(frozen=True)
class UInt:
    """An unsigned integer of a given type: libmaxminddb checks the metadata's types."""

    kind: int  # 5 uint16, 6 uint32, 9 uint64
    value: int


def _control(kind: int, size: int) -> bytes:
    if size < 29:
        first, extra = size, b""
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    else:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    if kind <= 7:
        return bytes([kind << 5 | first]) + extra
    return bytes([first, kind - 7]) + extra  # an extended type


def _bits(network: str) -> str:
    net = ipaddress.ip_network(network)
    if net.version == 4:
        net = ipaddress.ip_network(f"::{net.network_address}/{96 + net.prefixlen}")
    return format(int(net.network_address), "0128b")[: net.prefixlen]


def write(
    path: Path,
    networks: dict[str, dict[str, Any]],
    *,
    database_type: str = "Test-Country",
) -> Path:
    """A database mapping each network (``"192.0.2.0/24"``) to its record."""
    data = b""
    offsets: dict[str, int] = {}
    tree: dict[str, Any] = {}
    for network, record in networks.items():
        encoded = encode(record)
        if encoded not in offsets:
            offsets[encoded] = len(data)
            data += encoded
        node = tree
        bits = _bits(network)
        for bit in bits[:-1]:
            child = node.get(bit)
            if not isinstance(child, dict):  # a wider network so far: split it in two
                child = node[bit] = {} if child is None else {"0": child, "1": child}
            node = child
        node[bits[-1]] = offsets[encoded]  # a later, wider network would replace narrower ones
    nodes: list[dict[str, Any]] = []

    def number(node: dict[str, Any]) -> int:
        nodes.append(node)
        index = len(nodes) - 1
        for child in node.values():
            if isinstance(child, dict):
                number(child)
        return index

    number(tree)
    ids = {id(node): i for i, node in enumerate(nodes)}
    count = len(nodes)
    tree_bytes = b""
    for node in nodes:
        for bit in "01":
            child = node.get(bit)
            if isinstance(child, dict):
                value = ids[id(child)]
            elif child is None:
                value = count  # no data
            else:
                value = count + 16 + child
            tree_bytes += struct.pack(">I", value)[1:]
    metadata = {
        "node_count": UInt(6, count),
        "record_size": UInt(5, 24),
        "ip_version": UInt(5, 6),
        "database_type": database_type,
        "languages": ["en"],
        "binary_format_major_version": UInt(5, 2),
        "binary_format_minor_version": UInt(5, 0),
        "build_epoch": UInt(9, 1_790_000_000),
        "description": {"en": "networks for Touchpoint's tests"},
    }
    path.write_bytes(tree_bytes + b"\0" * 16 + data + METADATA_MARKER + encode(metadata))
    return path


def country(code: str) -> dict[str, Any]:
    """A record as GeoLite2-Country and DB-IP Lite have them (the fields Touchpoint reads)."""
    return {"country": {"iso_code": code, "names": {"en": code}}}


# 127.0.0.0/8 makes the live test server (on 127.0.0.1) a visitor from Austria.
NETWORKS = {
    "127.0.0.0/8": country("AT"),
    "192.0.2.0/24": country("CH"),
    "198.51.100.0/25": {"registered_country": {"iso_code": "DE"}},  # no country: registered one
    "2001:db8::/32": country("DE"),
    "2001:db8:ab::/48": country("CH"),
}
