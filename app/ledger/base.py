"""The ledger's engine and transactions, shared by the modules that write it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import psycopg
from sqlalchemy import Connection, CursorResult, Engine, Executable, create_engine, event, text
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, configure_mappers, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from app.errors import LedgerRefused, LedgerUnavailable
from app.ledger.delivery_states import check, guard


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
        # The connection used last is the next one out: a worker's few busy threads keep
        # reusing the same warm connections (their statements prepared, the server's caches
        # filled) instead of cycling through its whole pool.
        pool_use_lifo=True,
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
    # The statements a store's hot path runs alone or together on PostgreSQL (see
    # warm_up).
    AHEAD: ClassVar[tuple[Executable, ...]] = ()

    def __init__(self, engine: Engine, *, status_webhooks: bool = False) -> None:
        self.engine = engine
        # STATUS_WEBHOOK_URL is set: the state changes the PMS hears of write their webhook in
        # the same transaction (app/ledger/outbox.py).
        self.status_webhooks = status_webhooks
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # The same pool, each connection in autocommit while checked out (see _connection).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        event.listen(self._autocommit, "before_execute", _one_statement_only)
        self._lones: dict[int, _Lone] = {}
        self._lones_lock = threading.Lock()

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

    def _alone(self, statement: Executable, params: Mapping[str, Any]) -> Lone:
        """Run one statement as its own transaction (autocommit) and return what it returned.

        On PostgreSQL it runs on the driver's connection (see `_on_driver`). Measured,
        SQLAlchemy's execution around a lone statement cost twice the CPU of the statement
        itself (bench/RESULTS.md), and the worker sends several per delivery. Elsewhere
        (SQLite) it runs through `_connection(one_statement=True)`.
        """
        if not self._postgres:
            with self._connection(one_statement=True) as connection:
                return _lone_result(connection.execute(statement, params))
        with self._on_driver(autocommit=True) as run:
            return run(statement, params)

    @contextmanager
    def _together(self) -> Iterator[Run]:
        """One transaction of Core statements, each sent as `run(statement, params)`, which
        returns what it returned (Lone). On PostgreSQL the statements run on the driver's
        connection (see `_on_driver`); elsewhere through `_connection()`. For a hot path whose
        statements depend on each other's results (a plan: what was inserted is claimed)."""
        if not self._postgres:
            with self._connection() as connection:
                yield runner(connection)
            return
        with self._on_driver(autocommit=False) as run:
            yield run

    @contextmanager
    def _on_driver(self, *, autocommit: bool) -> Iterator[Run]:
        """The driver's (psycopg's) connection, taken from the engine's pool, for statements
        compiled once (`_Lone`), their parameters through SQLAlchemy's own bind processors and
        their result columns through its result processors, each given the delivery state
        machine's check as the engine's hook gives it. Without `autocommit`, the statements
        are one transaction, committed when the block ends and rolled back (by the pool's
        reset) when it raises. A lost connection is LedgerUnavailable, and the pool recycles
        every connection as old as it, as SQLAlchemy does; a refused value is LedgerRefused.
        """

        def run(statement: Executable, params: Mapping[str, Any]) -> Lone:
            lone = self._lone(statement)
            check(statement, [params])
            return lone.run(driver, params)

        with _unavailable_as_ours():
            pooled = self.engine.raw_connection()
            driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
            try:
                if autocommit:
                    driver.autocommit = True
                yield run
                if not autocommit:
                    driver.commit()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                pooled.invalidate(exc)
                self.engine.pool._invalidate(pooled, exc)
                raise
            finally:
                if autocommit and not driver.broken:
                    driver.autocommit = False
                pooled.close()

    def _lone(self, statement: Executable) -> _Lone:
        lone = self._lones.get(id(statement))
        if lone is None:
            with self._lones_lock:
                # Threads that missed together wait here for one compile, not each its own:
                # a worker's first tasks arrive together, and one compile is milliseconds.
                lone = self._lones.get(id(statement))
                if lone is None:
                    lone = _Lone.compile(statement, self.engine.dialect)
                    self._lones[id(statement)] = lone
        return lone

    def warm_up(self) -> None:
        """Pay now, as a worker gets ready, what its first tasks would otherwise pay while
        every event of the first second waited behind them (bench/RESULTS.md):

        - the ORM's mappers, configured: SQLAlchemy does it on the first model built (an
          event's start builds one), some 20 ms of CPU;
        - on PostgreSQL, the statements the hot path runs on the driver's connection (each
          store's AHEAD), compiled, milliseconds apiece; one left out is compiled on first use;
        - the first connection, opened, and with it the dialect's first-connect checks.

        Raises LedgerUnavailable (after the compiles) when the database does not answer."""
        configure_mappers()
        if self._postgres:
            for store in type(self).__mro__:
                for statement in vars(store).get("AHEAD", ()):
                    self._lone(statement)
        self.ping()

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
    """SQLAlchemy's errors, and psycopg's where the driver is used directly (`_alone`; the pool
    hands on psycopg's own error when it cannot connect), as the ledger's."""
    try:
        yield
    except (OperationalError, psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise LedgerUnavailable(f"ledger unavailable: {_kind(exc)}") from exc
    except (DataError, psycopg.DataError) as exc:
        # Its text quotes the statement's values (a guest's name, an address): only its kind.
        raise LedgerRefused(f"the ledger refused a value ({_kind(exc)})") from None
    except DBAPIError as exc:
        # A connection cut mid-statement surfaces as an InterfaceError from psycopg.
        if exc.connection_invalidated:
            raise LedgerUnavailable("ledger unavailable: connection lost") from exc
        raise


@dataclass(frozen=True)
class Lone:
    """What a lone statement returned: its rows, and how many rows it changed."""

    names: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    rowcount: int

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def first(self) -> dict[str, Any] | None:
        return dict(zip(self.names, self.rows[0], strict=True)) if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]


Run = Callable[[Executable, Mapping[str, Any]], Lone]


def runner(connection: Connection) -> Run:
    """`run` (see LedgerBase._together) on a SQLAlchemy connection."""
    return lambda statement, params: _lone_result(connection.execute(statement, params))


def _lone_result(result: CursorResult[Any]) -> Lone:
    if not result.returns_rows:
        return Lone((), [], result.rowcount)
    rows = [tuple(row) for row in result]
    # The statements here return one row per row they change (RETURNING); SQLite's rowcount
    # is not known before they are read.
    return Lone(tuple(result.keys()), rows, len(rows))


@dataclass(frozen=True)
class _Lone:
    """A statement compiled once for PostgreSQL, run on the driver's connection. Only
    statements SQLAlchemy would send as they are qualify: no expanding parameter (it
    re-renders the SQL per execution) and no column default computed in Python (SQLAlchemy
    computes it per execution: the statement names every such column itself)."""

    statement: Executable  # kept: the cache is keyed by its id
    compiled: SQLCompiler
    # The result columns' names, as SQLAlchemy's rows name them (psycopg's cursor.description
    # builds an object per column on every read, a tenth of a claim's CPU), and each one's
    # processor (UTCDateTime's, say), in the statement's column order.
    names: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect) -> _Lone:
        compiled = cast("ClauseElement", statement).compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string or compiled.escaped_bind_names:
            raise ValueError("a lone statement takes no expanding or escaped parameters")
        defaulted = [*compiled.insert_prefetch, *compiled.update_prefetch]
        if defaulted:
            names = ", ".join(sorted(column.key for column in defaulted))
            raise ValueError(f"a lone statement must set {names} itself (a Python default)")
        columns = compiled._result_columns
        results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
        return cls(statement, compiled, tuple(column.keyname for column in columns), results)

    def run(self, driver: psycopg.Connection[Any], given: Mapping[str, Any]) -> Lone:
        values = self.compiled.construct_params(dict(given), _check=False)
        processors = self.compiled._bind_processors
        for name, process in processors.items():
            if name in values and callable(process):  # a sequence is a tuple's, not ours
                values[name] = process(values[name])
        # Prepared on the connection's first use (psycopg waits for five): the server plans
        # each statement once per connection, not once per use until then.
        cursor = driver.execute(self.compiled.string, values, prepare=True)
        if not self.names:
            return Lone((), [], cursor.rowcount)
        returned = cursor.pgresult.nfields if cursor.pgresult is not None else 0
        if returned != len(self.names):
            raise RuntimeError(f"{returned} columns came back, {len(self.names)} expected")
        rows = cursor.fetchall()
        if any(self.results):
            rows = [
                tuple(value if process is None else process(value)
                      for process, value in zip(self.results, row, strict=True))
                for row in rows
            ]  # fmt: skip
        return Lone(self.names, rows, cursor.rowcount)


def _kind(exc: BaseException) -> str:
    """The driver's name for an error (SQLAlchemy wraps it as `orig`)."""
    return type(getattr(exc, "orig", None) or exc).__name__
