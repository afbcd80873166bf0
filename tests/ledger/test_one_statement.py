"""A lone statement runs as its own transaction (autocommit: no BEGIN and COMMIT round trips);
a second statement on such a connection is refused, since it would commit on its own."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Connection, select, update

from app.ledger.models import EventStatus
from app.ledger.store import EVENTS, Ledger
from tests.ledger.test_event_starts import record


def _status(ledger: Ledger, event_id: int) -> str:
    with ledger.engine.connect() as other:
        return str(other.execute(select(EVENTS.c.status).where(EVENTS.c.id == event_id)).scalar())


def _in_transaction(connection: Connection) -> bool:
    """Whether the driver's connection holds a transaction open (BEGIN sent, no COMMIT)."""
    dbapi = connection.connection.dbapi_connection
    if isinstance(dbapi, psycopg.Connection):
        return dbapi.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    return bool(dbapi.in_transaction)  # type: ignore[union-attr]


def test_a_lone_statement_is_committed_without_a_transaction(ledger: Ledger) -> None:
    """What one statement wrote is there for every other connection once it returns, and no
    BEGIN was sent for it; a transaction's statement, for contrast, runs inside one."""
    event_id = record(ledger)

    with ledger._connection(one_statement=True) as connection:
        moved = connection.execute(
            update(EVENTS).where(EVENTS.c.id == event_id).values(status=EventStatus.IGNORED)
        )
        assert moved.rowcount == 1
        assert not _in_transaction(connection)
    with ledger._connection() as connection:
        connection.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(detail="x"))
        assert _in_transaction(connection)

    assert _status(ledger, event_id) == EventStatus.IGNORED


def test_a_second_statement_is_refused(ledger: Ledger) -> None:
    """A caller that sends two statements needs a transaction: the second is refused, not run
    in a transaction of its own."""
    event_id = record(ledger)

    with ledger._connection(one_statement=True) as connection:
        connection.execute(select(EVENTS.c.id).where(EVENTS.c.id == event_id))
        ignore = update(EVENTS).where(EVENTS.c.id == event_id).values(status=EventStatus.IGNORED)
        with pytest.raises(RuntimeError, match="use a transaction"):
            connection.execute(ignore)

    assert _status(ledger, event_id) == EventStatus.RECEIVED


class Undone(Exception):
    pass


def test_a_transaction_still_holds_several_statements(ledger: Ledger) -> None:
    """Without one_statement, the pool's connections are back in transactions: a failure
    after the first write undoes it."""
    event_id = record(ledger)
    with ledger._connection(one_statement=True) as connection:
        connection.execute(select(EVENTS.c.id))

    def write_then_fail() -> None:
        with ledger._connection() as connection:
            connection.execute(
                update(EVENTS).where(EVENTS.c.id == event_id).values(status=EventStatus.IGNORED)
            )
            raise Undone

    with pytest.raises(Undone):
        write_then_fail()

    assert _status(ledger, event_id) == EventStatus.RECEIVED
