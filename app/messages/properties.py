"""templates/properties.toml: which language, time zone, hotel name and country each Seam
workspace or space gets. The ops team edits it beside the templates; a space's entry wins over
its workspace's, and anything unset falls back to DEFAULT_LOCALE and TIMEZONE (a hotel with no
country has guests' national phone numbers refused: only numbers with their +country code are
sent to).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from app.errors import PropertiesError
from app.settings.locales import normalize_locale

_ENTRY_KEYS = frozenset({"locale", "timezone", "property_name", "country"})
_TABLES = ("workspaces", "spaces")


@dataclass(frozen=True)
class Entry:
    locale: str | None = None
    timezone: str | None = None
    property_name: str | None = None
    # ISO 3166 alpha-2 (FR): the country a guest's national phone number is read in.
    country: str | None = None


@dataclass(frozen=True)
class Audience:
    """Who a message is written for: its language, the hotel's time zone and name."""

    locale: str
    timezone: str
    property_name: str = ""


@dataclass(frozen=True)
class PropertyMap:
    workspaces: Mapping[str, Entry] = field(default_factory=dict)
    spaces: Mapping[str, Entry] = field(default_factory=dict)

    def lookup(self, workspace_id: str | None, space_ids: Iterable[str]) -> Entry:
        """The entry for these ids: each field from the first space that sets it, else the
        workspace's."""
        entries = [self.spaces[s] for s in space_ids if s in self.spaces]
        if workspace_id is not None and workspace_id in self.workspaces:
            entries.append(self.workspaces[workspace_id])

        def first(name: str) -> str | None:
            return next((getattr(e, name) for e in entries if getattr(e, name)), None)

        return Entry(first("locale"), first("timezone"), first("property_name"), first("country"))

    def locales(self) -> set[str]:
        return {e.locale for e in [*self.workspaces.values(), *self.spaces.values()] if e.locale}

    def countries(self) -> set[str]:
        """Every country a hotel is in: where a national number typed in a search may be from."""
        entries = [*self.workspaces.values(), *self.spaces.values()]
        return {e.country for e in entries if e.country}


def check_country(text: str) -> str:
    """`fr` and `FR` alike become `FR`; raises ValueError unless it is a country with phones."""
    code = text.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{text!r} is not a country code (ISO 3166, two letters, e.g. FR, GB, US)"
        ) from None
    return code


def check_timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not a time zone (e.g. Europe/Paris)") from None
    return text


def parse_properties(source: str) -> PropertyMap:
    """Parse properties.toml, or raise PropertiesError saying what and where."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise PropertiesError(
            f"not valid TOML: {exc}", int(match.group(1)) if match else None
        ) from None
    unknown = set(data) - set(_TABLES)
    if unknown:
        name = sorted(unknown)[0]
        raise PropertiesError(
            f"unknown section {name!r}: only [workspaces.ID] and [spaces.ID] are allowed",
            _line_of(source, name),
        )
    tables: dict[str, dict[str, Entry]] = {}
    for table in _TABLES:
        section = data.get(table, {})
        tables[table] = {}
        for seam_id, values in section.items():
            if not isinstance(values, dict):
                raise PropertiesError(
                    f'{table}.{seam_id} must be a section like [{table}."ID"]',
                    _line_of(source, seam_id),
                )
            tables[table][seam_id] = _entry(source, table, seam_id, values)
    return PropertyMap(tables["workspaces"], tables["spaces"])


def _entry(source: str, table: str, seam_id: str, values: dict[str, object]) -> Entry:
    line = _line_of(source, seam_id)
    for key, value in values.items():
        if key not in _ENTRY_KEYS:
            raise PropertiesError(
                f"[{table}.{seam_id}] has an unknown setting {key!r} "
                "(allowed: locale, timezone, property_name, country)",
                line,
            )
        if not isinstance(value, str):
            raise PropertiesError(f"[{table}.{seam_id}] {key} must be text in quotes", line)
    try:
        locale = values.get("locale")
        timezone = values.get("timezone")
        country = values.get("country")
        return Entry(
            locale=normalize_locale(locale) if isinstance(locale, str) else None,
            timezone=check_timezone(timezone) if isinstance(timezone, str) else None,
            property_name=str(values["property_name"]) if "property_name" in values else None,
            country=check_country(country) if isinstance(country, str) else None,
        )
    except ValueError as exc:
        raise PropertiesError(f"[{table}.{seam_id}] {exc}", line) from None


def countries_in(path: Path) -> set[str]:
    """The countries properties.toml at `path` gives its hotels; none when it is missing or
    cannot be read (`keycourier templates check` reports why)."""
    try:
        return parse_properties(path.read_text(encoding="utf-8")).countries()
    except (OSError, UnicodeDecodeError, PropertiesError):
        return set()


def _line_of(source: str, needle: str) -> int | None:
    for number, line in enumerate(source.splitlines(), start=1):
        if needle in line and not line.lstrip().startswith("#"):
            return number
    return None
