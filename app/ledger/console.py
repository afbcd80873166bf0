"""What the ops console and its JSON API read and write: deliveries found by guest, reservation
or destination, a delivery's timeline, open front-desk flags, alerts, the audit log, the
sign-in lockout and the console's sessions. The only writer of `audit_log`,
`ops_sign_in_failures` and `ops_sessions`.

The lockout and the sessions are written with single statements (an upsert, an UPDATE or DELETE
whose WHERE holds the whole condition), never read-then-write: two web processes or threads
racing cannot both take the last sign-in slot, and SQLite never has to upgrade a read lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from app.errors import SlotRefused
from app.ledger.base import LedgerBase
from app.ledger.models import (
    MAX_ROW_ID,
    AuditEntry,
    ConsoleSession,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    FlagStatus,
    FrontDeskFlag,
    ProviderEvent,
    SignInFailures,
    UTCDateTime,
)
from app.ledger.scope import HotelPlaces, Scope, flag_in_scope, in_hotel, in_scope
from app.messages.kinds import FRONT_DESK_KINDS

# A delivery that reached nobody (failed, undelivered, or still unsent when the stay ended), or
# that waits on Seam to issue its access method again: the alerts page lists these beside the
# front-desk alerts.
ALERT_STATUSES: tuple[str, ...] = (
    DeliveryStatus.FAILED,
    DeliveryStatus.UNDELIVERED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.HELD,
)


@dataclass(frozen=True)
class DeliveryQuery:
    """A search of the deliveries in `scope`: those whose guest name, reservation or access
    method id contains `text` (any case), whose id is `text`, or whose destination hashes to
    `destination_hash` or one of `destination_hashes` (an exact phone number or email, a
    national number read in each hotel's country: app/delivery/destinations.py); with `hotel`,
    only that hotel's."""

    scope: Scope
    text: str | None = None
    destination_hash: str | None = None
    destination_hashes: tuple[str, ...] = ()
    status: str | None = None
    channel: str | None = None
    hotel: HotelPlaces | None = None
    # The hotel's name, as asked for (what the audit log and the page show).
    hotel_name: str | None = None
    limit: int = 50
    offset: int = 0


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


class ConsoleStore(LedgerBase):
    # -- deliveries ------------------------------------------------------------------------

    def find_deliveries(self, query: DeliveryQuery) -> list[Delivery]:
        """Newest first; attempts loaded."""
        statement = (
            select(Delivery).options(selectinload(Delivery.attempts)).where(in_scope(query.scope))
        )
        if query.hotel is not None:
            statement = statement.where(in_hotel(query.hotel))
        matches: list[ColumnElement[bool]] = []
        hashes = sorted({*query.destination_hashes, *filter(None, [query.destination_hash])})
        if hashes:
            matches.append(Delivery.destination_hash.in_(hashes))
        if query.text:
            pattern = "%" + query.text.replace("\\", "\\\\").replace("%", r"\%").replace(
                "_", r"\_"
            ) + "%"  # fmt: skip
            matches += [
                Delivery.guest_name.ilike(pattern, escape="\\"),
                Delivery.reservation.ilike(pattern, escape="\\"),
                Delivery.access_method_id.ilike(pattern, escape="\\"),
            ]
            if query.text.isascii() and query.text.isdigit() and len(query.text) < 10:
                matches.append(Delivery.id == int(query.text))
        if matches:
            statement = statement.where(or_(*matches))
        if query.status:
            statement = statement.where(Delivery.status == query.status)
        if query.channel:
            statement = statement.where(Delivery.channel == query.channel)
        statement = statement.order_by(Delivery.id.desc()).limit(query.limit).offset(query.offset)
        with self._transaction() as session:
            return list(session.scalars(statement))

    def delivery_timeline(
        self, delivery_id: int, scope: Scope
    ) -> tuple[Delivery, list[ProviderEvent]] | None:
        """The delivery with its attempts, and what the provider reported about it; None when
        there is none in `scope` by that id."""
        if not 0 < delivery_id <= MAX_ROW_ID:
            return None
        with self._transaction() as session:
            delivery = session.scalars(
                select(Delivery)
                .options(selectinload(Delivery.attempts))
                .where(Delivery.id == delivery_id, in_scope(scope))
            ).first()
            if delivery is None:
                return None
            reports = session.scalars(
                select(ProviderEvent)
                .where(ProviderEvent.delivery_id == delivery_id)
                .order_by(ProviderEvent.id)
            )
            return delivery, list(reports)

    def sees_delivery(self, delivery_id: int, scope: Scope) -> bool:
        """Whether there is a delivery by that id in `scope`."""
        if not 0 < delivery_id <= MAX_ROW_ID:
            return False
        with self._transaction() as session:
            found = session.scalar(
                select(Delivery.id).where(Delivery.id == delivery_id, in_scope(scope))
            )
            return found is not None

    def same_key(self, delivery: Delivery, scope: Scope, limit: int = 50) -> list[Delivery]:
        """The other deliveries of this access method in `scope` (other channel, fallbacks,
        resends, front-desk messages), newest first."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.access_method_id == delivery.access_method_id,
                        Delivery.id != delivery.id,
                        in_scope(scope),
                    )
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )

    def alert_deliveries(self, scope: Scope, limit: int = 100) -> list[Delivery]:
        """Front-desk alerts sent (or not) and guest deliveries that reached nobody, in
        `scope`."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .where(
                        or_(
                            Delivery.kind.in_(FRONT_DESK_KINDS),
                            Delivery.status.in_(ALERT_STATUSES),
                        ),
                        in_scope(scope),
                    )
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )

    def poisoned_events(self, limit: int = 100) -> list[Event]:
        """Events set aside after too many failed tries, newest first, with their reasons."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Event)
                    .where(Event.status == EventStatus.POISONED)
                    .order_by(Event.id.desc())
                    .limit(limit)
                )
            )

    # -- front-desk flags ------------------------------------------------------------------

    def open_flag_list(self, scope: Scope, limit: int = 200) -> list[FrontDeskFlag]:
        """The card queue: open flags in `scope`, oldest first (the guest who has waited
        longest)."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(FrontDeskFlag)
                    .where(FrontDeskFlag.status == FlagStatus.OPEN, flag_in_scope(scope))
                    .order_by(FrontDeskFlag.id)
                    .limit(limit)
                )
            )

    def get_flag(self, flag_id: int, scope: Scope) -> FrontDeskFlag | None:
        """The flag, if `scope` sees it."""
        if not 0 < flag_id <= MAX_ROW_ID:
            return None
        with self._transaction() as session:
            return session.scalars(
                select(FrontDeskFlag).where(FrontDeskFlag.id == flag_id, flag_in_scope(scope))
            ).first()

    # -- the audit log ---------------------------------------------------------------------

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        detail: str | None = None,
    ) -> int:
        row = AuditEntry(
            actor=actor[:100],
            action=action,
            target=None if target is None else target[:200],
            outcome=outcome[:40],
            detail=detail,
        )
        with self._transaction() as session:
            session.add(row)
        return row.id

    def audit_entries(self, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
                )
            )

    def get_audit(self, entry_id: int) -> AuditEntry | None:
        if not 0 < entry_id <= MAX_ROW_ID:
            return None
        with self._transaction() as session:
            return session.get(AuditEntry, entry_id)

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
