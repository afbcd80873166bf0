"""A worker's start at processing an event: what tells a worker that died from one still working.

A failure that raises is recorded as a failed try (app/events/tries.py). A worker killed while
processing an event (SIGKILL, the OOM killer, a segfault) records nothing; the sweeper, or the
broker's redelivery, hands the event out again, and without a trace of the first try an event
that kills every worker that takes it would be retried for ever. So before any work a worker
commits a start on the event: a random token, when it began, and a lease. The worker's
heartbeat (app/ledger/leases.py) renews the lease while the worker lives; the try's end clears
the start, whichever way it ended (`end_event_start`; a finished or set-aside event's own
write clears it too).

The next start tells the two cases apart:

- a start whose lease still runs belongs to a living worker (a slow Seam, a duplicate of the
  task handed out meanwhile): the newcomer leaves the event to it, and nothing is counted;
- a start whose lease ran out was left by a worker that stopped: it counts as a failed try
  (with those that raised) and a lost one, and the newcomer takes the event over, or, if that
  try was the last one EVENT_MAX_TRIES allows, sets the event aside (`poisoned`) in the same
  statement, so no worker takes it again.

A dead worker leaves a start on every event it was processing, and only one of them may have
killed it. So an event with a lost try is processed while no other such event is (one live
start among them at a time; the start waits otherwise, and the sweeper hands it on later): the
killer dies alone, and the events that were beside it once are not counted again with it. A
fresh event is never held back by this.

Each start is a compare-and-set on the token it found: of two workers that pick the event up at
once, one starts and the other finds the first's live start.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, ClassVar, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Table,
    bindparam,
    exists,
    func,
    select,
    update,
)

from app.ledger.base import LedgerBase
from app.ledger.models import Event, EventStatus, one_of, utcnow

EVENTS = cast(Table, Event.__table__)
UNFINISHED = (EventStatus.RECEIVED, EventStatus.QUEUED)
# Cleared when a try ends, whichever way it ends.
NO_START: dict[str, Any] = dict(
    processing_token=None, processing_started_at=None, processing_lease_until=None
)
# Two workers racing for one event: the loser reads again, and finds the winner's start.
_RACES = 3
# The other events, when an event that lost a try looks for one in a worker.
_OTHER = EVENTS.alias("other")
# PostgreSQL's transaction lock that makes those starts one at a time (any constant: keycourier
# takes no other advisory lock).
_ONE_AT_A_TIME = 0x6B657963

_GET = select(EVENTS).where(EVENTS.c.id == bindparam("b_id"))
# The usual start, in one statement: an unfinished event no worker has started and that never
# lost a try (what `_start` would find and write after reading it). Anything else is read first.
_START_FRESH = (
    update(EVENTS)
    .where(
        EVENTS.c.id == bindparam("b_id"),
        one_of(EVENTS.c.status, UNFINISHED),
        EVENTS.c.processing_token.is_(None),
        EVENTS.c.lost_tries == 0,
    )
    .values(
        processing_token=bindparam("b_token"),
        processing_started_at=bindparam("b_now"),
        processing_lease_until=bindparam("b_lease"),
    )
    .returning(*EVENTS.c)
)
_END = (
    update(EVENTS)
    .where(EVENTS.c.id == bindparam("b_id"), EVENTS.c.processing_token == bindparam("b_token"))
    .values(**NO_START)
)
_RENEW = (
    update(EVENTS)
    .where(
        one_of(EVENTS.c.status, UNFINISHED),
        EVENTS.c.processing_token.in_(bindparam("b_tokens", expanding=True)),
    )
    .values(processing_lease_until=bindparam("b_lease"))
    .returning(EVENTS.c.id)
)


def set_aside_detail(failed_tries: int, reason: str) -> str:
    """What a set-aside event's detail says (the console's alerts show it)."""
    return f"set aside after {failed_tries} failed tries: {reason}"


class StartKind(Enum):
    STARTED = "started"  # this worker holds the event now
    BUSY = "busy"  # a living worker holds it (its lease runs): leave it to that worker
    # It has lost a try, and another event that has is in a worker: try again later.
    WAITING = "waiting"
    DONE = "done"  # finished already, or not in the ledger
    SET_ASIDE = "set_aside"  # a dead worker's start was its last allowed try: poisoned now


@dataclass(frozen=True)
class EventStart:
    kind: StartKind
    # The event as it stands after the start (None: not in the ledger).
    event: Event | None
    # The start's token (STARTED only): ending the try and the heartbeat name it.
    token: str | None = None
    # A worker had started on it and stopped without finishing: counted as a failed try here.
    lost: bool = False


class EventStartStore(LedgerBase):
    AHEAD: ClassVar[tuple[Executable, ...]] = (_START_FRESH,)

    def start_event(
        self, event_id: int, lease: timedelta, max_failed_tries: int, lost_reason: str
    ) -> EventStart:
        """Commit a start on an unfinished event before any work on it (see the module's
        docstring). A start left by a worker whose lease ran out counts as a failed try, for
        `lost_reason`; the `max_failed_tries`-th sets the event aside instead of starting."""
        token, now = uuid.uuid4().hex, utcnow()
        fresh = {"b_id": event_id, "b_token": token, "b_now": now, "b_lease": now + lease}
        started = self._alone(_START_FRESH, fresh).first()
        if started is not None:
            return EventStart(StartKind.STARTED, Event(**started), token, False)
        event: Event | None = None
        for _ in range(_RACES):
            with self._connection() as connection:
                row = connection.execute(_GET, {"b_id": event_id}).mappings().first()
                event = None if row is None else Event(**row)
                start = self._start(connection, event, lease, max_failed_tries, lost_reason)
            if start is not None:
                return start
            # Another worker started (or finished) it between the read and the write.
        return EventStart(StartKind.BUSY, event)

    def _start(
        self,
        connection: Connection,
        event: Event | None,
        lease: timedelta,
        max_failed_tries: int,
        lost_reason: str,
    ) -> EventStart | None:
        """One compare-and-set on the start `event` was read with; None if it lost a race."""
        if event is None:
            return EventStart(StartKind.DONE, None)
        if event.status not in UNFINISHED:
            return EventStart(StartKind.DONE, event)
        now = utcnow()
        held, lease_until = event.processing_token, event.processing_lease_until
        if held is not None and lease_until is not None and lease_until > now:
            return EventStart(StartKind.BUSY, event)
        lost = held is not None
        as_found = [
            EVENTS.c.id == event.id,
            one_of(EVENTS.c.status, UNFINISHED),
            EVENTS.c.processing_token.is_(None)
            if held is None
            else EVENTS.c.processing_token == held,
        ]
        counted: dict[str, Any] = {}
        if lost:
            counted = dict(
                attempts=event.attempts + 1,
                failed_tries=event.failed_tries + 1,
                lost_tries=event.lost_tries + 1,
                detail=lost_reason,
            )
            if counted["failed_tries"] >= max_failed_tries:
                aside = dict(
                    counted,
                    **NO_START,
                    status=EventStatus.POISONED,
                    detail=set_aside_detail(counted["failed_tries"], lost_reason),
                    next_attempt_at=None,
                    processed_at=now,
                )
                return self._write(
                    connection, event, as_found, aside, StartKind.SET_ASIDE, None, lost
                )
        token = uuid.uuid4().hex
        started = dict(
            counted,
            processing_token=token,
            processing_started_at=now,
            processing_lease_until=now + lease,
        )
        if not lost and event.lost_tries == 0:
            return self._write(connection, event, as_found, started, StartKind.STARTED, token, lost)
        # It has lost a try: it starts only while no other event that has is in a worker.
        if connection.dialect.name == "postgresql":
            # Two such starts at once would each miss the other's (READ COMMITTED); SQLite
            # already runs one writer at a time.
            connection.execute(select(func.pg_advisory_xact_lock(_ONE_AT_A_TIME)))
        alone = ~exists().where(
            _OTHER.c.id != event.id,
            _OTHER.c.status.in_(UNFINISHED),
            _OTHER.c.lost_tries > 0,
            _OTHER.c.processing_lease_until > now,
        )
        alone_start = self._write(
            connection, event, [*as_found, alone], started, StartKind.STARTED, token, lost
        )
        if alone_start is not None:
            return alone_start
        return self._write(
            connection, event, as_found, {**counted, **NO_START}, StartKind.WAITING, None, lost
        )

    @staticmethod
    def _write(
        connection: Connection,
        event: Event,
        where: list[ColumnElement[bool]],
        values: dict[str, Any],
        kind: StartKind,
        token: str | None,
        lost: bool,
    ) -> EventStart | None:
        if connection.execute(update(EVENTS).where(*where).values(**values)).rowcount != 1:
            return None
        for name, value in values.items():
            setattr(event, name, value)
        return EventStart(kind, event, token, lost)

    def end_event_start(self, event_id: int, token: str) -> bool:
        """The try under `token` ended (a failed try recorded, held to look at again, an
        outage): clear its start. False if it was not the event's start any more."""
        return self._alone(_END, {"b_id": event_id, "b_token": token}).rowcount == 1

    def renew_event_leases(self, tokens: Sequence[str], lease: timedelta) -> set[int]:
        """The heartbeat: renew for `lease` from now the starts held under `tokens`. Returns
        the ids of the events renewed (a start taken over is not among them)."""
        if not tokens:
            return set()
        with self._connection(one_statement=True) as connection:
            renewed = connection.execute(
                _RENEW, {"b_tokens": list(tokens), "b_lease": utcnow() + lease}
            )
            return set(renewed.scalars())
