"""The visitor's country, from the request's address, through an offline database.

The source is a MaxMind-format country database (``.mmdb``: GeoLite2-Country, DB-IP Lite
Country, ...) that the operator downloads and names in the setting ``geoip_database``: nothing is
fetched at run time. It is read with ``maxminddb`` (its C extension where the wheel has one, a
pure-Python reader otherwise) through a memory map.

Privacy: only the address's network is looked up (IPv4 /24, IPv6 /48, as when addresses are
truncated for storage), only the country is kept, and only for the page view being decided:
neither the address nor the country is stored. Without a source the country is unknown, every
``country`` condition is false, and ``touchpoint check`` says so at each one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import maxminddb

from ..errors import ConfigError
from ..privacy.clientip import truncate_ip
from ..syntax.countries import country_code
from ..syntax.files import Problem

log = logging.getLogger("touchpoint.geolocation")

NO_SOURCE = "no geolocation source, setting geoip_database is empty"
NO_GEOLOCATION = (  # touchpoint check, at each country condition without a source
    "no geolocation source configured (setting geoip_database) — this condition is never true"
)
CACHE_SIZE = 8192  # networks; a lookup costs about 1 µs with the C extension, 20 µs without
PROBE = "192.0.2.0"  # looked up once when a file is opened (TEST-NET-1, RFC 5737)


def truncate(address: str) -> str:
    """The network an address is looked up by: IPv4 to its /24, IPv6 to its /48 (an IPv4
    address mapped into IPv6 as IPv4); "" when ``address`` is not an IP address."""
    return truncate_ip(address) or ""


class Geolocation(Protocol):
    def country(self, address: str) -> str | None:
        """The ISO 3166-1 alpha-2 code of the country ``address`` is in, or None."""
        ...  # pragma: no cover

    def unknown(self, address: str) -> str:
        """Why ``country(address)`` is None, for explanations."""
        ...  # pragma: no cover


def unknown_country(source: Geolocation | None, address: str) -> str:
    """Why the country of a page view is unknown (``simulate``, preview traces)."""
    return "country unknown: " + (source.unknown(address) if source else NO_SOURCE)


def _iso_code(record: Any) -> str | None:
    """The country of a database record: GeoLite2 and DB-IP write ``country.iso_code`` (and a
    ``registered_country`` where the country in use is not known); some free databases write a
    flat ``country_code``."""
    if not isinstance(record, dict):
        return None
    for key in ("country", "registered_country"):
        entry = record.get(key)
        if isinstance(entry, dict) and isinstance(code := entry.get("iso_code"), str):
            return code.upper()
    code = record.get("country_code")
    return code.upper() if isinstance(code, str) else None


class CountryDatabase:
    """A MaxMind-format database file; replaced files are picked up by :meth:`refresh`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.reader, self.stamp = self._open()
        self.lookup = self._cached(self.reader)

    def _open(self) -> tuple[Any, tuple[int, int, int]]:
        where = f"geoip_database {self.path}"
        if self.path.is_dir():
            raise ConfigError(f"{where}: a folder; name the .mmdb file in it")
        try:
            stat = os.stat(self.path)
            reader = maxminddb.open_database(str(self.path))
            kind = str(reader.metadata().database_type)
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror}") from None
        except (maxminddb.InvalidDatabaseError, ValueError, TypeError, KeyError):
            raise ConfigError(f"{where}: not a MaxMind-format database (.mmdb)") from None
        try:
            reader.get(PROBE)  # walks the tree and decodes a record: a damaged file fails here
        except (maxminddb.InvalidDatabaseError, ValueError, TypeError, KeyError) as exc:
            reader.close()
            message = str(exc).replace(f" ({self.path})", "")
            raise ConfigError(f"{where}: damaged MaxMind-format database: {message}") from None
        if "ASN" in kind or "Anonymous" in kind or "ISP" in kind:
            reader.close()
            raise ConfigError(f"{where}: a {kind} database has no countries; use a country one")
        return reader, (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    @staticmethod
    def _cached(reader: Any) -> Callable[[str], str | None]:
        @functools.lru_cache(maxsize=CACHE_SIZE)
        def lookup(network: str) -> str | None:
            try:
                return _iso_code(reader.get(network))
            except ValueError:  # an IPv6 address in an IPv4-only database
                return None
            except maxminddb.InvalidDatabaseError as exc:  # damaged in a place PROBE missed
                log.warning("geoip_database: %s", exc)
                return None

        return lookup

    def country(self, address: str) -> str | None:
        network = truncate(address)
        return self.lookup(network) if network else None

    def unknown(self, address: str) -> str:
        if not truncate(address):
            return "no client address"
        return "the address's network is not in the geolocation database"

    @property
    def description(self) -> str:
        metadata = self.reader.metadata()
        return f"{metadata.database_type} ({self.path})"

    def refresh(self) -> bool:
        """Open the file again if it was replaced (a new monthly database); a file that cannot
        be read keeps the database in use, with a warning. True when a new one was opened."""
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            log.warning("geoip_database %s: %s; keeping the one in use", self.path, exc.strerror)
            return False
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) == self.stamp:
            return False
        try:
            reader, stamp = self._open()
        except ConfigError as exc:
            log.warning("%s; keeping the one in use", exc)
            self.stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)  # warn once per change
            return False
        # The old reader is not closed: a lookup on the event loop may still be using it. It
        # is unmapped when the last reference goes.
        self.reader, self.stamp = reader, stamp
        self.lookup = self._cached(reader)
        log.info("geoip_database reloaded: %s", self.description)
        return True


class FixedCountry:
    """A what-if country for ``touchpoint simulate --country``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def country(self, address: str) -> str | None:
        return self.code

    def unknown(self, address: str) -> str:
        return "none given"  # pragma: no cover: country() always answers


async def watch(database: CountryDatabase, *, interval: float = 10.0) -> None:
    """Pick up a replaced database file within ``interval`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(database.refresh)


def what_if(setting: str, *, country: str | None, address: str | None) -> Geolocation | None:
    """The source ``touchpoint simulate`` decides with: ``--country`` as given, else the
    configured database (``--ip`` is looked up in it)."""
    if country:
        try:
            return FixedCountry(country_code(country))
        except ValueError as exc:
            raise ConfigError(f"--country: {exc}") from None
    source = open_source(setting)
    if address and not truncate(address):
        raise ConfigError(f"--ip: {address!r} is not an IP address")
    if address and source is None:
        raise ConfigError(
            "--ip needs a geolocation source (setting geoip_database); or give --country"
        )
    return source


def check_note(problems: Iterable[Problem]) -> str | None:
    """The closing line of ``touchpoint check`` when country conditions can never hold."""
    count = sum(p.message == NO_GEOLOCATION for p in problems)
    if not count:
        return None
    return (
        f"warning: {count} country condition(s) can never hold: no geolocation source is"
        " configured. Set geoip_database to a country database (.mmdb), see"
        " docs/operations.md#geolocation"
    )


def open_source(setting: str) -> CountryDatabase | None:
    """The source the setting ``geoip_database`` names, or None when it is empty. Raises
    ConfigError naming the file when it is missing or not a country database."""
    return CountryDatabase(setting) if setting.strip() else None
