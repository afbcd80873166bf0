"""Whether the ledger is there and migrated, asked before a command reads or writes it.

`keycourier deliveries`, `sweep` and `reconcile` open the ledger through `open_ledger`, and
`keycourier doctor` reports `ledger_state`: a SQLite file that does not exist yet is reported,
never created (connecting to it would create it), and a ledger that was never migrated is told
apart from one that cannot be reached, each with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.errors import LedgerNotReady, LedgerUnavailable
from app.ledger.migrate import alembic_config
from app.ledger.store import Ledger
from app.settings import Settings

MIGRATE = "run `keycourier migrate`"


class State(StrEnum):
    READY = "ready"
    MISSING = "missing"  # a SQLite file that does not exist yet
    UNREACHABLE = "unreachable"
    NOT_MIGRATED = "not_migrated"  # reachable, no revision at all
    BEHIND = "behind"  # reachable, at another revision than this version's


@dataclass(frozen=True)
class LedgerState:
    state: State
    # Where the ledger is, for people: a SQLite path, or a database URL without its password.
    where: str
    revision: str | None = None
    head: str | None = None
    reason: str = ""

    @property
    def problem(self) -> str | None:
        """One line saying what is wrong and what to do, or None when the ledger is ready."""
        if self.state is State.MISSING:
            return (
                f"there is no ledger at {self.where} yet: {MIGRATE} to create it "
                "(`keycourier serve` also creates a SQLite ledger when it starts)"
            )
        if self.state is State.UNREACHABLE:
            return (
                f"cannot reach the ledger at {self.where} ({self.reason}): check DATABASE_URL "
                "and that the database server is up"
            )
        if self.state is State.NOT_MIGRATED:
            return f"the ledger at {self.where} is not migrated yet: {MIGRATE}"
        if self.state is State.BEHIND:
            return (
                f"the ledger at {self.where} is at revision {self.revision}, and this version "
                f"of keycourier needs {self.head}: {MIGRATE}"
            )
        return None


def describe_database(database_url: str) -> str:
    """The ledger's location without a password: the file for SQLite, else the URL."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return "DATABASE_URL"
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def sqlite_file(database_url: str) -> Path | None:
    """The SQLite ledger's file, or None for another database (or an in-memory one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def ledger_state(settings: Settings) -> LedgerState:
    """Where the ledger stands, asked without creating or changing anything."""
    url = settings.database_url
    where = describe_database(url)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return LedgerState(State.MISSING, where)
    head = head_revision(url)
    ledger = Ledger.from_url(url, pool_size=1)
    try:
        ledger.ping()
        with ledger.engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except LedgerUnavailable as exc:
        reason = str(exc).removeprefix("ledger unavailable: ")
        return LedgerState(State.UNREACHABLE, where, head=head, reason=reason)
    finally:
        ledger.engine.dispose()
    if revision is None:
        return LedgerState(State.NOT_MIGRATED, where, head=head)
    if revision != head:
        return LedgerState(State.BEHIND, where, revision=revision, head=head)
    return LedgerState(State.READY, where, revision=revision, head=head)


def open_ledger(settings: Settings) -> Ledger:
    """The ledger, once it is there and migrated; raises LedgerNotReady saying what to do."""
    found = ledger_state(settings)
    if found.problem is not None:
        raise LedgerNotReady(found.problem)
    return Ledger.from_url(settings.database_url)
