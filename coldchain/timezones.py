"""Time zones: which names are zones, and an instant's wall-clock time and label in one (pure).

The platform stores and computes in UTC (the database's ``timestamptz``, the API's ISO 8601
answers); a zone only changes how an instant is *shown*: to a person in the zone they chose
(the dashboard's setting), and at a site in the site's own zone (``locations.time_zone``,
migration 0017), because "arrived at 02:10" means little to the receiving warehouse unless it
is their 02:10. A zone is an IANA name (``Europe/Zurich``), checked against the zone database
Python ships with (``zoneinfo``, kept current by the ``tzdata`` package), never an offset
(``+01:00`` is wrong half the year).

Every function here is a function of its arguments: no clock, no request, no settings.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

#: The zone everything is stored in and shown in unless a person chose another.
DEFAULT_ZONE: Final = "UTC"


@functools.cache
def zone_names() -> tuple[str, ...]:
    """The zones a person or a site may pick: ``UTC`` first, then every ``Area/City`` zone of
    the zone database, sorted (the legacy aliases such as ``US/Eastern`` or ``CET`` are left
    out: a site is in a place, not in an abbreviation)."""
    regional = sorted(
        name
        for name in available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))
    )
    return (DEFAULT_ZONE, *regional)


def check_zone(name: str) -> str:
    """``name`` (trimmed) if it is an IANA zone this platform knows, else ValueError saying
    what a zone looks like (pydantic reports it against the field)."""
    value = name.strip()
    if value == DEFAULT_ZONE or value in _known():
        return value
    raise ValueError(
        f"{name!r} is not a known IANA time zone: use a name such as 'Europe/Zurich' or "
        "'America/New_York' (or 'UTC')"
    )


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zone_names())


@functools.cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(check_zone(name))
    except ZoneInfoNotFoundError:  # listed but unreadable: treat as unknown
        raise ValueError(f"{name!r} is not a known IANA time zone") from None


def in_zone(instant: datetime, zone: str) -> datetime:
    """The instant as wall-clock time in ``zone`` (a naive instant is taken as UTC, as the
    database gives none). ValueError for an unknown zone."""
    aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    if zone == DEFAULT_ZONE:
        return aware.astimezone(UTC)
    return aware.astimezone(_zone(zone))


def zone_label(local: datetime) -> str:
    """The abbreviation people read for a zone-aware time: ``CET``, ``CEST``, ``EDT``, ``UTC``;
    zones without a letter abbreviation say their offset as ``UTC+04`` (the database spells
    them ``+04``, which reads like a number)."""
    name = local.tzname() or "UTC"
    if name[:1] in "+-":
        return "UTC" + name
    return name


def city_of(zone: str) -> str:
    """The place a zone is named after: ``America/New_York`` → ``New York``, ``UTC`` → ``UTC``."""
    return zone.rsplit("/", 1)[-1].replace("_", " ")
