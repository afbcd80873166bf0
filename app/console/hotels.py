"""The hotel of each delivery, as the console shows and filters it: properties.toml's
`property_name` for the delivery's Seam workspace and spaces (a space's name wins), read from
the templates folder and read again when the file changes. A file that cannot be used keeps
the last good version (`keycourier templates check` and /readyz say what is wrong with it).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.errors import PropertiesError
from app.ledger.models import Delivery
from app.ledger.scope import HotelPlaces, Scope
from app.messages.catalog import PROPERTIES_FILE
from app.messages.properties import PropertyMap, parse_properties

log = logging.getLogger(__name__)


class HotelNames:
    """Hotel names from one properties.toml. `current()` reads the disk: call it in a thread."""

    def __init__(self, templates_dir: Path) -> None:
        self.path = Path(templates_dir) / PROPERTIES_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._map = PropertyMap()

    def current(self) -> Hotels:
        try:
            info = self.path.stat()
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._map = self._read() if stamp is not None else PropertyMap()
            return Hotels(self._map)

    def _read(self) -> PropertyMap:
        try:
            return parse_properties(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, PropertiesError) as exc:
            log.warning("hotel names: %s cannot be used (%s); keeping the last good one",
                        self.path, exc)  # fmt: skip
            return self._map


class Hotels:
    """One version of properties.toml's hotel names."""

    def __init__(self, properties: PropertyMap) -> None:
        self.properties = properties

    def name_of(self, delivery: Delivery) -> str | None:
        return self.properties.lookup(delivery.workspace_id, delivery.space_id_list).property_name

    def names(self) -> list[str]:
        """Every hotel properties.toml names, sorted."""
        entries = [*self.properties.workspaces.values(), *self.properties.spaces.values()]
        return sorted({e.property_name for e in entries if e.property_name})

    def names_for(self, scope: Scope) -> list[str]:
        """The hotels someone with `scope` may filter by: those named for one of its
        workspaces or spaces, and those named only by spaces (properties.toml does not say
        which workspace a space is in) when it has workspaces. Everything from everywhere."""
        if scope.everywhere:
            return self.names()
        shown = []
        for name in self.names():
            places = self.places(name)
            assert places is not None
            if (
                places.workspaces & scope.workspaces
                or places.spaces & scope.spaces
                or (scope.workspaces and places.spaces and not places.workspaces)
            ):
                shown.append(name)
        return shown

    def places(self, name: str) -> HotelPlaces | None:
        """Where the hotel called `name` is; None when properties.toml names no such hotel."""
        if name not in self.names():
            return None
        spaces = self.properties.spaces
        return HotelPlaces(
            spaces=frozenset(s for s, e in spaces.items() if e.property_name == name),
            workspaces=frozenset(
                w for w, e in self.properties.workspaces.items() if e.property_name == name
            ),
            other_spaces=frozenset(
                s for s, e in spaces.items() if e.property_name and e.property_name != name
            ),
        )
