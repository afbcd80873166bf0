"""`LedgerBase._alone`: one statement as its own transaction, on PostgreSQL run on the driver's
connection beside SQLAlchemy's execution. It must write and answer what SQLAlchemy would, keep
the delivery state machine's check, and fail as the ledger fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import psycopg
import pytest
from sqlalchemy import bindparam, select, update

from app.errors import IllegalTransition, LedgerRefused, LedgerUnavailable
from app.ledger.delivery_states import DELIVERIES, Actor, move
from app.ledger.models import DeliveryStatus, EventStatus
from app.ledger.store import EVENTS, Ledger
from tests.conftest import POSTGRES_ADMIN_URL
from tests.ledger.test_event_starts import record

_DETAIL = (
    update(EVENTS)
    .where(EVENTS.c.id == bindparam("b_id"))
    .values(detail=bindparam("b_detail"), processing_lease_until=bindparam("b_until"))
    .returning(EVENTS.c.id, EVENTS.c.detail)
)


@pytest.fixture
def pg_ledger(clean_postgres_url: str) -> Iterator[Ledger]:
    ledger = Ledger.from_url(clean_postgres_url)
    yield ledger
    ledger.engine.dispose()


def _stored(ledger: Ledger, event_id: int) -> tuple[str | None, datetime | None]:
    with ledger.engine.connect() as other:
        row = other.execute(
            select(EVENTS.c.detail, EVENTS.c.processing_lease_until).where(EVENTS.c.id == event_id)
        ).one()
    return row.detail, row.processing_lease_until


def test_it_writes_and_answers_on_each_backend(ledger: Ledger) -> None:
    """Rows by name, the first's scalar, the rows changed; committed for every other
    connection once it returns. A time in another zone is stored as the same instant (the
    column's bind processing ran)."""
    event_id = record(ledger)
    until = datetime(2026, 12, 6, 12, 0, tzinfo=timezone(timedelta(hours=-5)))

    lone = ledger._alone(_DETAIL, {"b_id": event_id, "b_detail": "ü 'quoted'", "b_until": until})

    assert (lone.scalar(), lone.rowcount) == (event_id, 1)
    assert lone.first() == {"id": event_id, "detail": "ü 'quoted'"}
    assert lone.scalars() == [event_id]
    assert _stored(ledger, event_id) == ("ü 'quoted'", datetime(2026, 12, 6, 17, 0, tzinfo=UTC))
    nothing = ledger._alone(_DETAIL, {"b_id": event_id + 99, "b_detail": "x", "b_until": until})
    assert (nothing.first(), nothing.scalar(), nothing.rowcount) == (None, None, 0)


def test_the_state_machine_checks_a_status_given_as_a_parameter(pg_ledger: Ledger) -> None:
    release = move(
        Actor.WORKER,
        [DeliveryStatus.SENDING],
        [DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN],
        DELIVERIES.c.id == bindparam("b_id"),
        updated_at=bindparam("b_now"),
    )
    given = {"b_id": 1, "b_now": datetime.now(UTC)}
    assert pg_ledger._alone(release, given | {"b_status": DeliveryStatus.PENDING}).rowcount == 0
    with pytest.raises(IllegalTransition, match="may not move a delivery to sent"):
        pg_ledger._alone(release, given | {"b_status": DeliveryStatus.SENT})


def test_statements_sqlalchemy_would_complete_are_refused(pg_ledger: Ledger) -> None:
    """An expanding IN is rendered per execution, and a column's Python default (deliveries'
    updated_at on every UPDATE) computed per execution: neither is run beside SQLAlchemy,
    where the statement would go out without them."""
    expanding = update(EVENTS).where(EVENTS.c.id.in_(bindparam("b_ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        pg_ledger._alone(expanding.values(detail="x"), {"b_ids": [1]})
    defaulted = update(DELIVERIES).where(DELIVERIES.c.id == 1).values(error_message="x")
    with pytest.raises(ValueError, match="must set updated_at itself"):
        pg_ledger._alone(defaulted, {})


def test_returned_times_come_back_as_the_column_gives_them(ledger: Ledger) -> None:
    """A returned time goes through the column's result processing: an aware UTC instant on
    each backend, whatever zone the server's session uses."""
    event_id = record(ledger)
    until = datetime(2026, 12, 6, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    returning = (
        update(EVENTS)
        .where(EVENTS.c.id == bindparam("b_id"))
        .values(processing_lease_until=bindparam("b_until"))
        .returning(EVENTS.c.processing_lease_until)
    )
    given = {"b_id": event_id, "b_until": until}

    [[returned]] = ledger._alone(returning, given).rows

    assert returned == until
    assert returned.tzinfo is UTC


def test_a_refused_value_is_ledger_refused_without_the_value(pg_ledger: Ledger) -> None:
    event_id = record(pg_ledger)
    status = update(EVENTS).where(EVENTS.c.id == bindparam("b_id"))
    too_long = {"b_id": event_id, "b_s": "x" * 10_000 + "secret-looking"}
    with pytest.raises(LedgerRefused) as refused:
        pg_ledger._alone(status.values(status=bindparam("b_s")), too_long)
    assert "secret-looking" not in str(refused.value)
    # The connection went back to the pool usable.
    back = pg_ledger._alone(status.values(status=EventStatus.IGNORED), {"b_id": event_id})
    assert back.rowcount == 1


def test_a_lost_connection_is_ledger_unavailable_and_the_pool_recovers(pg_ledger: Ledger) -> None:
    """The server ends every connection of the pool (a restart): the statement that meets one
    is LedgerUnavailable, and the pool's other connections as old are not handed out again."""
    event_id = record(pg_ledger)
    held = [pg_ledger.engine.raw_connection() for _ in range(3)]
    for connection in held:
        connection.close()  # three connections in the pool
    database = pg_ledger.engine.url.database
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
    params = {"b_id": event_id, "b_detail": "after", "b_until": None}

    with pytest.raises(LedgerUnavailable, match="ledger unavailable"):
        pg_ledger._alone(_DETAIL, params)

    for _ in range(3):  # each would meet a dead connection, were they handed out
        assert pg_ledger._alone(_DETAIL, params).rowcount == 1


def test_a_database_that_does_not_answer_is_ledger_unavailable() -> None:
    """No connection can be opened (the server is down): an outage, which the worker waits
    out, not a failure that would count against the event."""
    ledger = Ledger.from_url("postgresql+psycopg://postgres@127.0.0.1:1/keycourier")
    try:
        with pytest.raises(LedgerUnavailable, match="ledger unavailable"):
            ledger._alone(_DETAIL, {"b_id": 1, "b_detail": "x", "b_until": None})
    finally:
        ledger.engine.dispose()


class Interrupted(Exception):
    pass


def _write_then_fail(ledger: Ledger, event_id: int) -> None:
    """A caller that fails between its statements."""
    with ledger._together() as run:
        run(_DETAIL, {"b_id": event_id, "b_detail": "lost", "b_until": None})
        raise Interrupted


def test_statements_together_commit_together_or_not_at_all(ledger: Ledger) -> None:
    """`_together`: what one statement wrote, the next reads; nothing is seen by another
    connection before the block ends; a block that raises leaves nothing written."""
    first, second = record(ledger, 1), record(ledger, 2)
    until = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    read = select(EVENTS.c.detail).where(EVENTS.c.id == bindparam("b_id"))

    with ledger._together() as run:
        run(_DETAIL, {"b_id": first, "b_detail": "one", "b_until": until})
        assert run(read, {"b_id": first}).scalar() == "one"
        assert _stored(ledger, first) == (None, None)
        run(_DETAIL, {"b_id": second, "b_detail": "two", "b_until": None})
    assert (_stored(ledger, first), _stored(ledger, second)) == (("one", until), ("two", None))

    with pytest.raises(Interrupted):
        _write_then_fail(ledger, first)
    assert _stored(ledger, first) == ("one", until)
    # The connection went back to the pool usable, out of that transaction.
    assert ledger._alone(_DETAIL, {"b_id": first, "b_detail": "again", "b_until": None}).rowcount
    assert _stored(ledger, first) == ("again", None)


def test_a_lone_statement_is_prepared_on_its_first_use(pg_ledger: Ledger) -> None:
    """The server plans it once per connection (psycopg alone would prepare at the fifth use),
    and the pool hands out the connection used last, so the next use finds it prepared."""
    event_id = record(pg_ledger)
    until = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    pg_ledger._alone(_DETAIL, {"b_id": event_id, "b_detail": "once", "b_until": until})

    pooled = pg_ledger.engine.raw_connection()
    try:
        driver = cast("psycopg.Connection[Any]", pooled.driver_connection)
        prepared = driver.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    finally:
        pooled.close()
    assert [text for (text,) in prepared if "UPDATE events SET detail" in text] != []


def test_the_pool_hands_out_the_connection_used_last(pg_ledger: Ledger) -> None:
    first, second = pg_ledger.engine.raw_connection(), pg_ledger.engine.raw_connection()
    first_pid = first.driver_connection.info.backend_pid  # type: ignore[union-attr]
    second_pid = second.driver_connection.info.backend_pid  # type: ignore[union-attr]
    first.close()
    second.close()

    again = pg_ledger.engine.raw_connection()
    try:
        assert again.driver_connection.info.backend_pid == second_pid != first_pid  # type: ignore[union-attr]
    finally:
        again.close()
