"""The console's sign-in lockout and its sessions in the ledger: the only writer of
`ops_sign_in_failures` and `ops_sessions` (ConsoleStore, app/ledger/console.py, is built on it).

Both are written with single statements (an upsert, an UPDATE or DELETE whose WHERE holds the
whole condition), never read-then-write: two web processes or threads racing cannot both take
the last sign-in slot, and SQLite never has to upgrade a read lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, delete, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.errors import SlotRefused
from app.ledger.base import LedgerBase
from app.ledger.models import ConsoleSession, SignInFailures, UTCDateTime


@dataclass(frozen=True)
class SignInSlots:
    """What `take_sign_in_slots` decided. Granted: a password may be checked; for each key,
    when its window began and, if the slot taken was its last, until when it is now locked
    (unless the password matches). Refused: `refused_by` is the index of the key that is
    locked, until `locked_until`."""

    windows: tuple[datetime, ...] = ()
    locks: tuple[datetime | None, ...] = ()
    refused_by: int | None = None
    locked_until: datetime | None = None

    @property
    def granted(self) -> bool:
        return self.refused_by is None


@dataclass(frozen=True)
class SessionRecord:
    """A live console session as the ledger has it (never the id itself)."""

    user_name: str
    password_tag: str


class SignInStore(LedgerBase):
    # -- the sign-in lockout ---------------------------------------------------------------

    def take_sign_in_slots(
        self, limits: Sequence[tuple[str, int]], *, now: datetime, window: timedelta
    ) -> SignInSlots:
        """Take one attempt slot for each (key, limit), in one transaction, before a password
        is checked: all of them, or none when one key is locked (refused_by names it).

        A key's window starts at its first slot and lasts `window`; taking its `limit`-th slot
        locks it for `window` from now (a slot given back unlocks it). A key locked, or whose
        window is over, starts afresh. Each slot is taken by one upsert whose WHERE holds the
        whole condition, so concurrent sign-ins, in any number of processes, never take more
        than `limit` slots between them, on SQLite and PostgreSQL alike."""
        windows: list[datetime] = []
        locks: list[datetime | None] = []
        try:
            with self._connection() as connection:
                for index, (key, limit) in enumerate(limits):
                    row = connection.execute(_take_slot(connection, key, limit, now, window))
                    taken = row.first()
                    if taken is None:
                        until = connection.execute(
                            select(SignInFailures.locked_until).where(
                                SignInFailures.name_key == key
                            )
                        ).scalar()
                        raise SlotRefused(index, until if until is not None else now + window)
                    windows.append(taken.first_failed_at)
                    locks.append(taken.locked_until)
        except SlotRefused as refused:  # the transaction is rolled back: no slot is kept
            return SignInSlots(refused_by=refused.index, locked_until=refused.until)
        return SignInSlots(windows=tuple(windows), locks=tuple(locks))

    def sign_in_succeeded(
        self, name_key: str, given_back: Sequence[tuple[str, datetime]] = ()
    ) -> None:
        """The password matched: the name's count starts again, and each (key, window) in
        `given_back` (the client address's) gets its slot back, if still in that window."""
        with self._connection() as connection:
            connection.execute(delete(SignInFailures).where(SignInFailures.name_key == name_key))
            for key, window_start in given_back:
                connection.execute(
                    update(SignInFailures)
                    .where(
                        SignInFailures.name_key == key,
                        SignInFailures.first_failed_at == window_start,
                        SignInFailures.failures > 0,
                    )
                    .values(failures=SignInFailures.failures - 1, locked_until=None)
                )

    # -- sessions --------------------------------------------------------------------------

    def start_session(
        self,
        id_hash: str,
        *,
        user_name: str,
        password_tag: str,
        now: datetime,
        lifetime: timedelta,
        idle: timedelta,
        replaces: str | None = None,
    ) -> None:
        """Record a new session (ending `replaces`, the one its browser had), and clear away
        sessions that ended by themselves."""
        with self._connection() as connection:
            connection.execute(
                delete(ConsoleSession).where(
                    or_(
                        ConsoleSession.expires_at <= now,
                        ConsoleSession.last_seen_at <= now - idle,
                        ConsoleSession.id_hash == (replaces or ""),
                    )
                )
            )
            connection.execute(
                insert(ConsoleSession).values(
                    id_hash=id_hash,
                    user_name=user_name[:100],
                    password_tag=password_tag,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + lifetime,
                )
            )

    def live_session(
        self, id_hash: str, *, now: datetime, idle: timedelta, touch_after: timedelta
    ) -> SessionRecord | None:
        """The session if it is neither past its lifetime nor idle longer than `idle`; its
        last use is moved to now when older than `touch_after` (not a write per page). A
        session found ended is deleted."""
        with self._transaction() as session:
            row = session.get(ConsoleSession, id_hash)
            if row is None:
                return None
            found = SessionRecord(row.user_name, row.password_tag)
            alive = row.expires_at > now and row.last_seen_at > now - idle
            stale = row.last_seen_at <= now - touch_after
        if not alive:
            self.end_session(id_hash)
            return None
        if stale:
            with self._connection() as connection:
                touched = connection.execute(
                    update(ConsoleSession)
                    .where(
                        ConsoleSession.id_hash == id_hash,
                        ConsoleSession.expires_at > now,
                        ConsoleSession.last_seen_at > now - idle,
                    )
                    .values(last_seen_at=now)
                ).rowcount
            if not touched:  # ended (signed out elsewhere) since it was read
                return None
        return found

    def end_session(self, id_hash: str) -> bool:
        """Revoke a session; whether there was one."""
        with self._connection() as connection:
            ended = connection.execute(
                delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash)
            ).rowcount
        return bool(ended)


def _take_slot(
    connection: Connection, key: str, limit: int, now: datetime, window: timedelta
) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING: one slot of `key`, or no row
    when it is locked (or full without a lock: a limit lowered since)."""
    row = SignInFailures
    upsert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    afresh = or_(
        and_(row.locked_until.is_not(None), row.locked_until <= now),
        row.first_failed_at <= now - window,
    )
    failures = case((afresh, 1), else_=row.failures + 1)
    return (
        upsert(row)
        .values(
            name_key=key,
            failures=1,
            first_failed_at=now,
            locked_until=now + window if limit <= 1 else None,
        )
        .on_conflict_do_update(
            index_elements=[row.name_key],
            set_={
                "failures": failures,
                "first_failed_at": case(
                    (afresh, literal(now, UTCDateTime())), else_=row.first_failed_at
                ),
                "locked_until": case(
                    (failures >= limit, literal(now + window, UTCDateTime())),
                    else_=literal(None, UTCDateTime()),
                ),
            },
            where=or_(afresh, and_(row.locked_until.is_(None), row.failures < limit)),
        )
        .returning(row.first_failed_at, row.locked_until)
    )
