"""The ledger's only writer (with app/ledger/deliveries.py and provider_events.py).

Every state change is a method here, each in its own transaction, so that a row's status moves
only along the transitions these modules allow. A database that cannot be reached becomes
`LedgerUnavailable`, which the web answers with 503 and the worker retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import Executable, Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from app.ledger import batch
from app.ledger.base import LedgerBase, make_engine
from app.ledger.batch import NewEvent, Recorded
from app.ledger.deliveries import DeliveryStore, NewDelivery, Planned
from app.ledger.event_starts import NO_START, EventStartStore, set_aside_detail
from app.ledger.grants import GrantStore
from app.ledger.models import (
    Delivery,
    Event,
    EventStatus,
    FlagStatus,
    FrontDeskFlag,
    utcnow,
)
from app.ledger.outbox import OutboxStore, owe_cards, owe_revoked
from app.ledger.provider_events import ProviderEventStore
from app.ledger.sending import AttemptEnd, Claimed, Destination, Finished, InFlight
from app.ledger.window import WindowStore

__all__ = [
    "AttemptEnd",
    "Claimed",
    "Destination",
    "Finished",
    "InFlight",
    "Ledger",
    "LedgerBase",
    "NewDelivery",
    "NewEvent",
    "Planned",
    "Recorded",
    "make_engine",
]


EVENTS = cast(Table, Event.__table__)
_GET_EVENT = select(EVENTS).where(EVENTS.c.id == bindparam("b_id"))
_FINISH_EVENT = (
    update(EVENTS)
    .where(EVENTS.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), detail=bindparam("b_detail"),
            processed_at=bindparam("b_now"), **NO_START)
)  # fmt: skip


class Ledger(
    ProviderEventStore, DeliveryStore, WindowStore, GrantStore, EventStartStore, OutboxStore
):
    """The ledger: events and front-desk flags here (a worker's start at an event:
    app/ledger/event_starts.py), deliveries in app/ledger/deliveries.py (scheduled ones:
    app/ledger/window.py; a deleted grant's: app/ledger/grants.py), provider status reports in
    app/ledger/provider_events.py, status webhooks owed in app/ledger/outbox.py."""

    AHEAD: ClassVar[tuple[Executable, ...]] = (_FINISH_EVENT,)

    @classmethod
    def from_url(
        cls, database_url: str, pool_size: int = 10, *, status_webhooks: bool = False
    ) -> Ledger:
        return cls(make_engine(database_url, pool_size), status_webhooks=status_webhooks)

    # -- events ----------------------------------------------------------------------------

    def record_event(self, new: NewEvent) -> Recorded:
        """Insert an event, or report the one already recorded under the same ids."""
        [values] = batch.event_rows([new], as_queued=False, now=utcnow())
        row = Event(**values)
        try:
            with self._transaction() as session:
                session.add(row)
            status = EventStatus(row.status)
            return Recorded(row.id, False, status, status == EventStatus.RECEIVED)
        except IntegrityError:
            existing = self._find_event(new.svix_id, new.seam_event_id)
            if existing is None:  # pragma: no cover - a unique clash always leaves a row
                raise
            status = EventStatus(existing.status)
            return Recorded(existing.id, True, status, status == EventStatus.RECEIVED)

    def record_events(self, news: Sequence[NewEvent], *, as_queued: bool) -> list[Recorded]:
        """Insert many events in one round trip (group commit); duplicates are reported.

        See app/ledger/batch.py for what `as_queued` means and how duplicates are told apart.
        """
        if not news:
            return []
        rows = batch.event_rows(news, as_queued=as_queued, now=utcnow())
        with self._transaction() as session:
            if self.engine.dialect.name == "postgresql":
                inserted = session.execute(batch.PG_INSERT, batch.as_arrays(rows)).all()
            else:
                statement = (
                    sqlite.insert(Event)
                    .on_conflict_do_nothing()
                    .returning(Event.id, Event.svix_id, Event.seam_event_id)
                )
                inserted = session.execute(statement, rows).all()
            existing: Sequence[Any] = ()
            if len(inserted) < len(news):
                params = batch.existing_params(news)
                existing = session.execute(
                    select(Event.id, Event.svix_id, Event.seam_event_id, Event.status).where(
                        or_(
                            Event.svix_id.in_(params["svix"]),
                            Event.seam_event_id.in_(params["events"]),
                        )
                    )
                ).all()
        return batch.match(news, rows, inserted, existing)

    def unqueue_events(self, event_ids: Sequence[int]) -> None:
        """Queued events whose publish failed: back to received, for Svix's retry to queue."""
        if not event_ids:
            return
        with self._transaction() as session:
            session.execute(
                update(Event)
                .where(Event.id.in_(event_ids), Event.status == EventStatus.QUEUED)
                .values(status=EventStatus.RECEIVED, queued_at=None)
            )

    def mark_events_queued(self, event_ids: Sequence[int]) -> None:
        """Handed to the broker just now (again, for the sweeper): unfinished events only."""
        if not event_ids:
            return
        with self._transaction() as session:
            session.execute(
                update(Event)
                .where(
                    Event.id.in_(event_ids),
                    Event.status.in_((EventStatus.RECEIVED, EventStatus.QUEUED)),
                )
                .values(status=EventStatus.QUEUED, queued_at=utcnow())
            )

    def _find_event(self, svix_id: str | None, seam_event_id: str | None) -> Event | None:
        with self._transaction() as session:
            for column, value in ((Event.svix_id, svix_id), (Event.seam_event_id, seam_event_id)):
                if value is not None:
                    found = session.scalar(select(Event).where(column == value))
                    if found is not None:
                        return found
        return None

    def get_event(self, event_id: int) -> Event | None:
        """The event, detached (read on every task: a Core read, not an ORM session)."""
        with self._connection() as connection:
            row = connection.execute(_GET_EVENT, {"b_id": event_id}).mappings().first()
        return None if row is None else Event(**row)

    def finish_event(self, event_id: int, status: EventStatus, detail: str | None = None) -> None:
        """Record how processing ended; a processed access_method.revoked or .deleted owes the
        PMS its key.revoked in the same transaction."""
        now = utcnow()
        tell = self.status_webhooks and status == EventStatus.PROCESSED
        params = {"b_id": event_id, "b_status": status, "b_detail": detail, "b_now": now}
        if not tell:
            self._alone(_FINISH_EVENT, params)
            return
        with self._connection() as connection:
            connection.execute(_FINISH_EVENT, params)
            owe_revoked(connection, event_id, now)

    def seen_seam_event_ids(self, seam_event_ids: Sequence[str]) -> set[str]:
        with self._transaction() as session:
            found = session.scalars(
                select(Event.seam_event_id).where(Event.seam_event_id.in_(seam_event_ids))
            )
            return {value for value in found if value is not None}

    def event_failed(
        self, event_id: int, detail: str, retry_at: datetime, *, failure: bool = False
    ) -> int:
        """Record a try at processing an event that did not finish it; the sweeper retries it
        at `retry_at`. A `failure` (not an outage, not Seam still changing) is also a failed
        try towards EVENT_MAX_TRIES.

        Returns how many failed tries it has had so far.
        """
        with self._transaction() as session:
            event = session.get(Event, event_id)
            if event is None or event.status not in (EventStatus.RECEIVED, EventStatus.QUEUED):
                return 0
            event.attempts += 1
            event.failed_tries += failure
            event.detail = detail
            event.next_attempt_at = retry_at
            return event.failed_tries

    def poison_event(self, event_id: int, reason: str) -> str | None:
        """Set an unfinished event aside for good, with the reason; returns the detail it now
        shows, or None if it was finished."""
        with self._transaction() as session:
            event = session.get(Event, event_id)
            if event is None or event.status not in (EventStatus.RECEIVED, EventStatus.QUEUED):
                return None
            event.status = EventStatus.POISONED
            event.detail = set_aside_detail(event.failed_tries, reason)
            event.next_attempt_at = None
            event.processed_at = utcnow()
            for name, value in NO_START.items():
                setattr(event, name, value)
            return event.detail

    def stale_event_ids(self, now: datetime, waited_since: datetime, limit: int) -> list[int]:
        """Unfinished events handed on before `waited_since` whose retry (if any) is due, and
        that no living worker is processing (a start whose lease runs)."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Event.id)
                    .where(
                        Event.status.in_((EventStatus.RECEIVED, EventStatus.QUEUED)),
                        func.coalesce(Event.queued_at, Event.received_at) < waited_since,
                        or_(Event.next_attempt_at.is_(None), Event.next_attempt_at <= now),
                        or_(
                            Event.processing_lease_until.is_(None),
                            Event.processing_lease_until <= now,
                        ),
                    )
                    .order_by(Event.id)
                    .limit(limit)
                )
            )

    # -- front-desk flags ------------------------------------------------------------------

    def open_flag(
        self,
        access_method_id: str,
        *,
        reason: str,
        access_grant_id: str | None,
        guest_name: str | None,
        event_id: int | None,
    ) -> tuple[int, bool]:
        """Open a flag for this access method unless one is open. Returns (id, created)."""
        row = FrontDeskFlag(
            access_method_id=access_method_id,
            access_grant_id=access_grant_id,
            guest_name=guest_name,
            reason=reason,
            opened_by_event_id=event_id,
        )
        try:
            with self._transaction() as session:
                session.add(row)
            return row.id, True
        except IntegrityError:
            with self._transaction() as session:
                existing = session.scalar(
                    select(FrontDeskFlag.id).where(
                        FrontDeskFlag.access_method_id == access_method_id,
                        FrontDeskFlag.status == FlagStatus.OPEN,
                    )
                )
            if existing is None:  # pragma: no cover - a unique clash always leaves a row
                raise
            return existing, False

    def close_flags(self, access_method_id: str) -> int:
        """Close the access method's open flags: its card is encoded (or issued). The PMS is
        owed card.encoded for each, in the same transaction."""
        now = utcnow()
        with self._connection() as connection:
            closed = list(
                connection.execute(
                    update(FrontDeskFlag)
                    .where(
                        FrontDeskFlag.access_method_id == access_method_id,
                        FrontDeskFlag.status == FlagStatus.OPEN,
                    )
                    .values(status=FlagStatus.CLOSED, closed_at=now)
                    .returning(FrontDeskFlag.id)
                ).scalars()
            )
            if self.status_webhooks:
                owe_cards(connection, closed, now)
            return len(closed)

    def flags(self, access_method_id: str) -> list[FrontDeskFlag]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(FrontDeskFlag)
                    .where(FrontDeskFlag.access_method_id == access_method_id)
                    .order_by(FrontDeskFlag.id)
                )
            )

    def flag_workspace(self, flag: FrontDeskFlag) -> str | None:
        """The Seam workspace `flag`'s card is in: that of the event that opened it, else that
        of its access method's newest delivery that names one (None when neither does)."""
        with self._transaction() as session:
            if flag.opened_by_event_id is not None:
                found = session.scalar(
                    select(Event.workspace_id).where(Event.id == flag.opened_by_event_id)
                )
                if found:
                    return found
            return session.scalar(
                select(Delivery.workspace_id)
                .where(
                    Delivery.access_method_id == flag.access_method_id,
                    Delivery.workspace_id.is_not(None),
                )
                .order_by(Delivery.id.desc())
                .limit(1)
            )
