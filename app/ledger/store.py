"""The ledger's only writer (with app/ledger/deliveries.py).

Every state change is a method here, each in its own transaction, so that a row's status moves
only along the transitions these modules allow. A database that cannot be reached becomes
`LedgerUnavailable`, which the web answers with 503 and the worker retries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.ledger.base import LedgerBase, make_engine
from app.ledger.deliveries import AttemptEnd, Claimed, DeliveryStore, NewDelivery
from app.ledger.models import (
    Event,
    EventStatus,
    FlagStatus,
    FrontDeskFlag,
    utcnow,
)

__all__ = [
    "AttemptEnd",
    "Claimed",
    "Ledger",
    "LedgerBase",
    "NewDelivery",
    "NewEvent",
    "Recorded",
    "make_engine",
]


@dataclass(frozen=True)
class NewEvent:
    """An incoming event as the ledger keeps it: ids and flags, never a credential."""

    svix_id: str | None
    seam_event_id: str | None
    event_type: str | None
    workspace_id: str | None = None
    access_method_id: str | None = None
    access_grant_ids: tuple[str, ...] = ()
    is_backup_code: bool = False
    occurred_at: str | None = None
    source: str = "webhook"
    status: EventStatus = EventStatus.RECEIVED
    detail: str | None = None


@dataclass(frozen=True)
class Recorded:
    event_id: int
    duplicate: bool
    status: EventStatus
    # Whether the caller must hand it to the broker: a new event with work to do, or a
    # duplicate of one whose first publish never happened.
    needs_enqueue: bool


class Ledger(DeliveryStore):
    """The ledger: events and front-desk flags here, deliveries in app/ledger/deliveries.py."""

    @classmethod
    def from_url(cls, database_url: str) -> Ledger:
        return cls(make_engine(database_url))

    # -- events ----------------------------------------------------------------------------

    def record_event(self, new: NewEvent) -> Recorded:
        """Insert an event, or report the one already recorded under the same ids."""
        row = Event(**_event_values(new, utcnow()))
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

        A duplicate, by svix-id or by Seam event id, of an event already recorded or of an
        earlier one in the same batch, is not inserted: its Recorded points at the first.
        With `as_queued`, events with work to do are stored as queued already, saving a
        round trip: the caller queues them next, and calls `unqueue_events` if it cannot (a
        queued event never processed is re-queued by the sweeper all the same).
        """
        if not news:
            return []
        now = utcnow()
        rows: list[dict[str, object]] = []
        for new in news:
            values = _event_values(new, now)
            if as_queued and new.status == EventStatus.RECEIVED:
                values["status"], values["queued_at"] = EventStatus.QUEUED.value, now
            rows.append(values)
        with self._transaction() as session:
            if self.engine.dialect.name == "postgresql":
                inserted = session.execute(PG_INSERT_EVENTS, _as_arrays(rows)).all()
            else:
                statement = (
                    sqlite.insert(Event)
                    .on_conflict_do_nothing()
                    .returning(Event.id, Event.svix_id, Event.seam_event_id)
                )
                inserted = session.execute(statement, rows).all()
            fresh: dict[tuple[str, str | None], int] = {}
            for ids in inserted:
                fresh[("svix", ids.svix_id)] = ids.id
                fresh[("event", ids.seam_event_id)] = ids.id
            existing = self._existing(session, news) if len(inserted) < len(news) else {}
        results: list[Recorded] = []
        claimed: set[int] = set()
        for new, values in zip(news, rows, strict=True):
            keys = [("svix", new.svix_id), ("event", new.seam_event_id)]
            new_id = next((fresh[k] for k in keys if k[1] is not None and k in fresh), None)
            if new_id is not None and new_id not in claimed:
                claimed.add(new_id)
                status = EventStatus(str(values["status"]))
                results.append(Recorded(new_id, False, status, status == EventStatus.QUEUED))
                continue
            found = next((existing[k] for k in keys if k[1] is not None and k in existing), None)
            if found is None and new_id is not None:  # a repeat inside this batch
                found = (new_id, str(values["status"]))
            assert found is not None, "a skipped insert always has a row it clashed with"
            status = EventStatus(found[1])
            results.append(Recorded(found[0], True, status, status == EventStatus.RECEIVED))
        return results

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

    @staticmethod
    def _existing(
        session: Session, news: Sequence[NewEvent]
    ) -> dict[tuple[str, str | None], tuple[int, str]]:
        svix_ids = [n.svix_id for n in news if n.svix_id]
        event_ids = [n.seam_event_id for n in news if n.seam_event_id]
        rows = session.execute(
            select(Event.id, Event.svix_id, Event.seam_event_id, Event.status).where(
                or_(Event.svix_id.in_(svix_ids), Event.seam_event_id.in_(event_ids))
            )
        ).all()
        found: dict[tuple[str, str | None], tuple[int, str]] = {}
        for row in rows:
            found[("svix", row.svix_id)] = (row.id, row.status)
            found[("event", row.seam_event_id)] = (row.id, row.status)
        return found

    def mark_events_queued(self, event_ids: Sequence[int]) -> None:
        if not event_ids:
            return
        with self._transaction() as session:
            session.execute(
                update(Event)
                .where(Event.id.in_(event_ids), Event.status == EventStatus.RECEIVED)
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
        with self._transaction() as session:
            return session.get(Event, event_id)

    def finish_event(self, event_id: int, status: EventStatus, detail: str | None = None) -> None:
        with self._transaction() as session:
            session.execute(
                update(Event)
                .where(Event.id == event_id)
                .values(status=status, detail=detail, processed_at=utcnow())
            )

    def seen_seam_event_ids(self, seam_event_ids: Sequence[str]) -> set[str]:
        with self._transaction() as session:
            found = session.scalars(
                select(Event.seam_event_id).where(Event.seam_event_id.in_(seam_event_ids))
            )
            return {value for value in found if value is not None}

    def event_failed(self, event_id: int, detail: str, retry_at: datetime) -> int:
        """Record a failed try at processing an event; the sweeper retries it at `retry_at`.

        Returns how many tries have failed so far.
        """
        with self._transaction() as session:
            event = session.get(Event, event_id)
            if event is None or event.status not in (EventStatus.RECEIVED, EventStatus.QUEUED):
                return 0
            event.attempts += 1
            event.detail = detail
            event.next_attempt_at = retry_at
            return event.attempts

    def stale_event_ids(self, now: datetime, waited_since: datetime, limit: int) -> list[int]:
        """Unfinished events handed on before `waited_since` whose retry (if any) is due."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Event.id)
                    .where(
                        Event.status.in_((EventStatus.RECEIVED, EventStatus.QUEUED)),
                        func.coalesce(Event.queued_at, Event.received_at) < waited_since,
                        or_(Event.next_attempt_at.is_(None), Event.next_attempt_at <= now),
                    )
                    .order_by(Event.id)
                    .limit(limit)
                )
            )

    def mark_events_requeued(self, event_ids: Sequence[int]) -> None:
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
        with self._transaction() as session:
            result = session.execute(
                update(FrontDeskFlag)
                .where(
                    FrontDeskFlag.access_method_id == access_method_id,
                    FrontDeskFlag.status == FlagStatus.OPEN,
                )
                .values(status=FlagStatus.CLOSED, closed_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def flags(self, access_method_id: str) -> list[FrontDeskFlag]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(FrontDeskFlag)
                    .where(FrontDeskFlag.access_method_id == access_method_id)
                    .order_by(FrontDeskFlag.id)
                )
            )


def _event_values(new: NewEvent, received_at: datetime) -> dict[str, object]:
    return {
        "svix_id": new.svix_id,
        "seam_event_id": new.seam_event_id,
        "event_type": new.event_type,
        "workspace_id": new.workspace_id,
        "access_method_id": new.access_method_id,
        "access_grant_ids": list(new.access_grant_ids),
        "is_backup_code": new.is_backup_code,
        "occurred_at": new.occurred_at,
        "source": new.source,
        "status": new.status.value,
        "detail": new.detail,
        "received_at": received_at,
    }


# One statement text whatever the batch size: the rows travel as arrays, so PostgreSQL (and
# psycopg's automatic prepared statements) parse and plan it once. SQLAlchemy's many-values
# insert costs ~100 us of Python per row; this, a few.
_PG_COLUMNS = {
    "svix_id": "text",
    "seam_event_id": "text",
    "event_type": "text",
    "workspace_id": "text",
    "access_method_id": "text",
    "access_grant_ids": "json",
    "is_backup_code": "boolean",
    "occurred_at": "text",
    "source": "text",
    "status": "text",
    "detail": "text",
    "received_at": "timestamptz",
    "queued_at": "timestamptz",
}
# Column names and types are the constants above; every value is a bound parameter.
_PG_ARRAYS = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _PG_COLUMNS.items())
PG_INSERT_EVENTS = text(
    " ".join(
        [
            "INSERT INTO events (",
            ", ".join([*_PG_COLUMNS, "attempts"]),
            ") SELECT *, 0 FROM unnest(",
            _PG_ARRAYS,
            ") ON CONFLICT DO NOTHING RETURNING id, svix_id, seam_event_id",
        ]
    )
)


def _as_arrays(rows: Sequence[dict[str, object]]) -> dict[str, list[object]]:
    arrays = {name: [row.get(name) for row in rows] for name in _PG_COLUMNS}
    arrays["access_grant_ids"] = [json.dumps(ids) for ids in arrays["access_grant_ids"]]
    return arrays
