"""The ledger's engine and transactions, shared by the modules that write it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from app.errors import LedgerRefused, LedgerUnavailable
from app.ledger.delivery_states import guard


def make_engine(database_url: str, pool_size: int = 10) -> Engine:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_execute", guard)
        return engine
    engine = create_engine(
        database_url,
        # No pre-ping: it cost a round trip on every transaction (the worker makes several per
        # delivery). A connection that died with its server fails its first statement instead,
        # which is LedgerUnavailable (retried like any outage), and SQLAlchemy then recycles
        # every connection older than the failure, so one restart costs one failed transaction.
        pool_pre_ping=False,
        # Connections past the pool are opened and closed per use: on PostgreSQL that is a
        # process fork each time. A worker's pool matches its threads (DATABASE_POOL_SIZE).
        pool_size=pool_size,
        max_overflow=10,
        pool_timeout=3,
        connect_args={"connect_timeout": 3},
    )
    # Every status change of a delivery is one the state machine allows.
    event.listen(engine, "before_execute", guard)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    # WAL lets the web and the worker read while the other writes; busy_timeout waits for locks.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class LedgerBase:
    def __init__(self, engine: Engine, *, status_webhooks: bool = False) -> None:
        self.engine = engine
        # STATUS_WEBHOOK_URL is set: the state changes the PMS hears of write their webhook in
        # the same transaction (app/ledger/outbox.py).
        self.status_webhooks = status_webhooks
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # The same pool, each connection in autocommit while checked out (see _connection).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        event.listen(self._autocommit, "before_execute", _one_statement_only)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with _unavailable_as_ours(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def _connection(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """A transaction for Core statements: the delivery hot path, where an ORM session's
        bookkeeping cost more CPU than the SQL it sent.

        `one_statement`: the caller sends exactly one statement, and the database runs it as
        its own transaction (autocommit), atomic as any statement is. psycopg sends BEGIN and
        COMMIT each as a round trip of its own, so a lone statement in a transaction costs
        three round trips, and alone one. A caller that may send a second statement (a
        status webhook owed in the same transaction, SQLite's two-statement forms) must not
        ask for it: the second is refused (RuntimeError), as it would commit on its own.
        """
        if one_statement:
            with _unavailable_as_ours(), self._autocommit.connect() as connection:
                yield connection
            return
        with _unavailable_as_ours(), self.engine.begin() as connection:
            yield connection

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def ping(self) -> None:
        with self._transaction() as session:
            session.execute(text("SELECT 1"))


def _one_statement_only(connection: Connection, *_: object) -> None:
    if connection.in_transaction():  # a statement ran already: it committed on its own
        raise RuntimeError("a second statement on a one-statement connection: use a transaction")


@contextmanager
def _unavailable_as_ours() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise LedgerUnavailable(f"ledger unavailable: {type(exc.orig).__name__}") from exc
    except DataError as exc:
        # Its text quotes the statement's values (a guest's name, an address): only its kind.
        raise LedgerRefused(f"the ledger refused a value ({type(exc.orig).__name__})") from None
    except DBAPIError as exc:
        # A connection cut mid-statement surfaces as an InterfaceError from psycopg.
        if exc.connection_invalidated:
            raise LedgerUnavailable("ledger unavailable: connection lost") from exc
        raise
