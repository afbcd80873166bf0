"""The heartbeat: a living worker keeps the claims it holds; a dead one loses them quickly.

A claim's lease is short (DELIVERY_LEASE_SECONDS), so the sweeper takes back a dead worker's
delivery within a lease and a sweep. A living worker may take longer than a lease over one
delivery (Seam slow to answer, a provider's retries), so a small thread per process renews,
every DELIVERY_HEARTBEAT_SECONDS, the lease of every claim a send in this process holds
(`holding`), fenced by the claim's token (app/ledger/sending.py renew_leases). A claim taken
back meanwhile is not renewed, and its holder's next write matches nothing: it stops.

The same thread renews, with the same lease, the starts this process holds on the events it is
processing (`holding_event`; app/ledger/event_starts.py): a start whose lease ran out is a
worker that died, and counts as a failed try.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from app.errors import KeycourierError
from app.ledger.store import Ledger

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the claims held in this process, from one daemon thread started
    on first use."""

    def __init__(self, ledger: Ledger, lease: timedelta, every: timedelta) -> None:
        self._ledger = ledger
        self._lease = lease
        self._every = every
        self._lock = threading.Lock()
        # claim token -> how many sends in this process hold it (a planning task's claims
        # share one token)
        self._held: dict[str, int] = {}
        # event start token -> how many tries in this process hold it (one: each start draws
        # its own)
        self._held_events: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @contextmanager
    def holding(self, token: str) -> Iterator[None]:
        """Keep the claim under `token` renewed while the block runs."""
        with self._holding(self._held, token):
            yield

    @contextmanager
    def holding_event(self, token: str) -> Iterator[None]:
        """Keep the event start under `token` renewed while the block runs."""
        with self._holding(self._held_events, token):
            yield

    @contextmanager
    def _holding(self, held: dict[str, int], token: str) -> Iterator[None]:
        with self._lock:
            held[token] = held.get(token, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="keycourier-lease-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                left = held.get(token, 1) - 1
                if left:
                    held[token] = left
                else:
                    held.pop(token, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def held_events(self) -> list[str]:
        with self._lock:
            return list(self._held_events)

    def renew_now(self) -> int:
        """One heartbeat: renew every claim and event start held here. Returns how many
        deliveries and events it renewed."""
        tokens, event_tokens = self.held(), self.held_events()
        renewed = 0
        try:
            if tokens:
                renewed += len(self._ledger.renew_leases(tokens, self._lease))
            if event_tokens:
                renewed += len(self._ledger.renew_event_leases(event_tokens, self._lease))
        except KeycourierError as exc:
            # The ledger unreachable: the holder's own writes fail too; the sweeper decides.
            log.warning("could not renew the leases this worker holds: %s", exc)
        return renewed

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._every.total_seconds()):
            self.renew_now()
