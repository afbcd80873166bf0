"""A worker's start at an event, on SQLite and PostgreSQL: a dead worker's start counts as a
failed try at the next pickup, a living worker's never does, and the bound sets the event aside.

A worker that died is played by a start taken with a lease of zero: nothing renews it, so it has
run out by the next start, exactly as a killed worker's start runs out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any

import psycopg
from sqlalchemy import event

from app.ledger.event_starts import StartKind
from app.ledger.leases import LeaseKeeper
from app.ledger.models import EventStatus, utcnow
from app.ledger.store import Ledger, NewEvent

LEASE = timedelta(minutes=5)
DEAD = timedelta(0)  # a start nobody renews: its worker is gone
LOST = "the worker stopped while processing it"


def record(ledger: Ledger, n: int = 1) -> int:
    return ledger.record_event(
        NewEvent(f"msg_start_{n}", f"evt_start_{n}", "access_method.issued", access_method_id="am")
    ).event_id


def queued(ledger: Ledger, event_id: int) -> None:
    ledger.mark_events_queued([event_id])


def far_future_stale(ledger: Ledger) -> list[int]:
    """What the sweeper would hand on, with every backoff and patience long past."""
    now = utcnow()
    return ledger.stale_event_ids(now, now + timedelta(days=1), 100)


def test_a_start_is_committed_and_cleared_when_the_try_ends(ledger: Ledger) -> None:
    """The start is in the ledger before any work; ending the try clears it, and finishing the
    event clears it too."""
    event_id = record(ledger)
    start = ledger.start_event(event_id, LEASE, 3, LOST)

    assert start.kind is StartKind.STARTED
    assert start.token is not None
    assert not start.lost
    stored = ledger.get_event(event_id)
    assert stored is not None
    assert stored.processing_token == start.token
    assert stored.processing_started_at is not None
    assert stored.processing_lease_until is not None
    assert stored.processing_lease_until > utcnow() + LEASE - timedelta(minutes=1)

    assert ledger.end_event_start(event_id, start.token)
    ended = ledger.get_event(event_id)
    assert ended is not None
    assert (ended.processing_token, ended.processing_lease_until) == (None, None)

    again = ledger.start_event(event_id, LEASE, 3, LOST)
    assert again.kind is StartKind.STARTED
    assert not again.lost
    ledger.finish_event(event_id, EventStatus.PROCESSED, "done")
    finished = ledger.get_event(event_id)
    assert finished is not None
    assert (finished.status, finished.processing_token) == (EventStatus.PROCESSED, None)
    assert (finished.failed_tries, finished.attempts) == (0, 0)
    assert ledger.start_event(event_id, LEASE, 3, LOST).kind is StartKind.DONE


@contextmanager
def sent_statements(ledger: Ledger) -> Iterator[list[str]]:
    """The statements the ledger sends meanwhile, by either path: SQLAlchemy's execution, or
    the driver's connection on PostgreSQL (LedgerBase._alone and _together)."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    if ledger.engine.dialect.name != "postgresql":
        event.listen(ledger.engine, "before_cursor_execute", count)
        try:
            yield statements
        finally:
            event.remove(ledger.engine, "before_cursor_execute", count)
        return
    execute = psycopg.Cursor.execute

    def counted(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def test_a_fresh_start_is_one_statement_and_a_started_event_still_read_first(
    ledger: Ledger,
) -> None:
    """The usual case, an event nobody started, costs one statement (the write returns the
    event); an event with a start on it is read before anything is written."""
    event_id = record(ledger)
    with sent_statements(ledger) as statements:
        start = ledger.start_event(event_id, LEASE, 3, LOST)
        assert start.kind is StartKind.STARTED
        assert start.event is not None
        assert (start.event.id, start.event.processing_token) == (event_id, start.token)
        assert start.event.received_at.tzinfo is UTC
        assert len(statements) == 1
        assert statements[0].lstrip().upper().startswith("UPDATE")

        statements.clear()
        busy = ledger.start_event(event_id, LEASE, 3, LOST)
        assert busy.kind is StartKind.BUSY
        assert [s.lstrip().split()[0].upper() for s in statements] == ["UPDATE", "SELECT"]


def test_a_living_workers_start_is_left_to_it_and_never_counted(ledger: Ledger) -> None:
    """A copy of the task picked up while the first worker still runs (its lease runs) starts
    nothing and counts nothing; the sweeper does not hand the event out meanwhile."""
    event_id = record(ledger)
    queued(ledger, event_id)
    first = ledger.start_event(event_id, LEASE, 1, LOST)
    assert first.kind is StartKind.STARTED

    for _ in range(3):
        duplicate = ledger.start_event(event_id, LEASE, 1, LOST)
        assert duplicate.kind is StartKind.BUSY
        assert duplicate.token is None

    stored = ledger.get_event(event_id)
    assert stored is not None
    assert (stored.status, stored.failed_tries, stored.attempts) == (EventStatus.QUEUED, 0, 0)
    assert stored.processing_token == first.token
    assert far_future_stale(ledger) == []


def test_the_heartbeat_keeps_a_slow_workers_start(ledger: Ledger) -> None:
    """A start whose lease the heartbeat renews is not counted as dead, however long the try;
    a start taken over is not renewed by its old holder."""
    event_id = record(ledger)
    start = ledger.start_event(event_id, DEAD, 3, LOST)
    assert start.token is not None
    keeper = LeaseKeeper(ledger, LEASE, timedelta(hours=1))
    with keeper.holding_event(start.token):
        assert keeper.renew_now() == 1
    assert ledger.start_event(event_id, LEASE, 3, LOST).kind is StartKind.BUSY

    assert ledger.renew_event_leases(["not-a-start"], LEASE) == set()
    assert ledger.renew_event_leases([start.token], LEASE) == {event_id}


def test_a_dead_workers_start_counts_as_a_failed_try_at_the_next_pickup(ledger: Ledger) -> None:
    """The next start finds the lease run out: one failed and lost try, with the reason, and
    the newcomer holds the event; the dead worker's token no longer ends anything."""
    event_id = record(ledger)
    queued(ledger, event_id)
    dead = ledger.start_event(event_id, DEAD, 3, LOST)
    assert dead.token is not None
    assert far_future_stale(ledger) == [event_id]  # the sweeper hands a dead worker's event on

    taken = ledger.start_event(event_id, LEASE, 3, LOST)

    assert taken.kind is StartKind.STARTED
    assert taken.lost
    assert taken.token is not None
    assert taken.token != dead.token
    stored = ledger.get_event(event_id)
    assert stored is not None
    assert (stored.failed_tries, stored.lost_tries, stored.attempts) == (1, 1, 1)
    assert stored.detail == LOST
    assert stored.status == EventStatus.QUEUED
    assert not ledger.end_event_start(event_id, dead.token)
    assert ledger.end_event_start(event_id, taken.token)


def test_the_last_allowed_lost_try_sets_the_event_aside_for_good(ledger: Ledger) -> None:
    """With a bound of 3, the third dead start is counted by a pickup that starts nothing: the
    event is poisoned with its reason and never handed out or started again."""
    event_id = record(ledger)
    queued(ledger, event_id)
    kinds = [ledger.start_event(event_id, DEAD, 3, LOST).kind for _ in range(4)]

    assert kinds == [StartKind.STARTED] * 3 + [StartKind.SET_ASIDE]
    stored = ledger.get_event(event_id)
    assert stored is not None
    assert stored.status == EventStatus.POISONED
    assert stored.detail == f"set aside after 3 failed tries: {LOST}"
    assert (stored.failed_tries, stored.lost_tries) == (3, 3)
    assert stored.processing_token is None
    assert stored.processed_at is not None
    assert far_future_stale(ledger) == []
    assert ledger.start_event(event_id, DEAD, 3, LOST).kind is StartKind.DONE


def test_lost_tries_add_up_with_failures_that_raised_but_not_with_outages(ledger: Ledger) -> None:
    """Outage retries set the backoff and never bring the bound nearer; a failure that raised
    does, and a dead worker's try after two of them is the third of three."""
    event_id = record(ledger)
    later = utcnow() + timedelta(seconds=1)
    for _ in range(5):
        ledger.event_failed(event_id, "Seam unreachable", later)
    outages = ledger.get_event(event_id)
    assert outages is not None
    assert (outages.attempts, outages.failed_tries) == (5, 0)

    assert ledger.event_failed(event_id, "unsupported_mode", later, failure=True) == 1
    assert ledger.event_failed(event_id, "unsupported_mode", later, failure=True) == 2
    ledger.start_event(event_id, DEAD, 3, LOST)
    assert ledger.start_event(event_id, LEASE, 3, LOST).kind is StartKind.SET_ASIDE
    stored = ledger.get_event(event_id)
    assert stored is not None
    assert stored.status == EventStatus.POISONED
    assert (stored.attempts, stored.failed_tries, stored.lost_tries) == (8, 3, 1)


def test_events_beside_a_dead_worker_go_one_at_a_time_and_fresh_ones_are_not_held(
    ledger: Ledger,
) -> None:
    """Two events were in a worker that died: one starts, the other waits (its lost try
    counted once) until the first's try ends; a fresh event starts meanwhile."""
    killer, neighbour, fresh = record(ledger, 1), record(ledger, 2), record(ledger, 3)
    for event_id in (killer, neighbour):
        ledger.start_event(event_id, DEAD, 5, LOST)

    first = ledger.start_event(killer, LEASE, 5, LOST)
    waiting = ledger.start_event(neighbour, LEASE, 5, LOST)
    again = ledger.start_event(neighbour, LEASE, 5, LOST)
    other = ledger.start_event(fresh, LEASE, 5, LOST)

    assert (first.kind, first.lost) == (StartKind.STARTED, True)
    assert (waiting.kind, waiting.lost) == (StartKind.WAITING, True)
    assert (again.kind, again.lost) == (StartKind.WAITING, False)
    assert other.kind is StartKind.STARTED
    stored = ledger.get_event(neighbour)
    assert stored is not None
    assert (stored.failed_tries, stored.processing_token) == (1, None)

    assert first.token is not None
    ledger.end_event_start(killer, first.token)
    after = ledger.start_event(neighbour, LEASE, 5, LOST)
    assert (after.kind, after.lost) == (StartKind.STARTED, False)


def test_two_workers_picking_an_event_up_at_once_start_it_once(ledger: Ledger) -> None:
    """Of concurrent starts on one event (the task and its copy), exactly one holds it; the
    rest leave it to that one, and nothing is counted."""
    event_id = record(ledger)
    barrier = threading.Barrier(4)
    kinds: list[StartKind] = []
    lock = threading.Lock()

    def pick_up() -> None:
        barrier.wait()
        kind = ledger.start_event(event_id, LEASE, 3, LOST).kind
        with lock:
            kinds.append(kind)

    threads = [threading.Thread(target=pick_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(k.value for k in kinds) == ["busy", "busy", "busy", "started"]
    stored = ledger.get_event(event_id)
    assert stored is not None
    assert (stored.failed_tries, stored.attempts) == (0, 0)
