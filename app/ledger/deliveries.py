"""Deliveries: planning them, ending those that will never go, and what the sweeper and
the ops views read. Sending one (claim, attempts) is app/ledger/sending.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import cache
from typing import ClassVar

from sqlalchemy import Executable, bindparam, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from app.ledger.base import Run
from app.ledger.delivery_states import Actor, move
from app.ledger.models import RESEND_MARK, AttemptOutcome, Delivery, DeliveryStatus, utcnow
from app.ledger.sending import (
    ATTEMPTS,
    DELIVERIES,
    SENT_STATUSES,
    Claimed,
    SendingStore,
    claim_planned,
    same_credential_of,
)
from app.messages.kinds import MessageKind

# A guest holds (or will hold) the credential through a delivery in one of these.
LIVE = (
    DeliveryStatus.PENDING,
    DeliveryStatus.HELD,
    DeliveryStatus.SENDING,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.SENT,
    DeliveryStatus.DRY_RUN,
    DeliveryStatus.DELIVERED,
)


# Still on its way: a message in one of these may yet reach the guest.
ON_ITS_WAY = (
    DeliveryStatus.PENDING,
    DeliveryStatus.HELD,
    DeliveryStatus.SENDING,
    DeliveryStatus.UNKNOWN,
)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to plan; app/delivery/planned.py's new_delivery builds one."""

    access_method_id: str
    kind: MessageKind
    channel: str
    credential_fingerprint: str
    event_id: int | None
    access_grant_id: str | None
    user_identity_id: str | None
    guest_name: str | None
    reservation: str | None
    destination_masked: str | None
    status: DeliveryStatus = DeliveryStatus.PENDING
    error_message: str | None = None
    fallback_for_id: int | None = None
    # The delivery window (app/delivery/window.py, app/delivery/scheduling.py): None, no wait / no
    # end.
    not_before: datetime | None = None
    expires_at: datetime | None = None
    # Who it is for, in the unique key (see Delivery.recipient): the guest's user identity, or
    # "" for a front-desk message about the access method as a whole.
    recipient: str = ""
    destination_hash: str | None = None
    # Which hotel: the Seam workspace, and the spaces as models.space_list keeps them.
    workspace_id: str | None = None
    space_ids: str | None = None


_NEW_DELIVERY_FIELDS = tuple(field.name for field in fields(NewDelivery))
# What an insert of a new delivery sets: NewDelivery's fields, and the times, set here rather
# than by the columns' defaults, which SQLAlchemy would compute per execution.
_INSERTED = (*_NEW_DELIVERY_FIELDS, "planned_destination_masked", "created_at", "updated_at")


def _insert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(DELIVERIES) if dialect == "postgresql" else sqlite.insert(DELIVERIES)


# Planning twice (a duplicate event, a retried task) inserts nothing: the unique key decides.
_INSERT_NEW = {
    name: _insert(name).on_conflict_do_nothing().returning(DELIVERIES.c.id)
    for name in ("postgresql", "sqlite")
}
# A credential's messages in one INSERT of several rows: those it inserted come back with
# their unique key (the rest were planned before), in no particular order. At most
# _ROWS_PER_INSERT rows a statement: one statement, compiled once, per number of rows.
_KEY_COLUMNS = ("access_method_id", "kind", "credential_fingerprint", "channel", "recipient")
_ROWS_PER_INSERT = 8


@cache
def _insert_rows(dialect: str, count: int) -> Executable:
    rows = [
        {name: bindparam(f"r{row}_{name}", type_=DELIVERIES.c[name].type) for name in _INSERTED}
        for row in range(count)
    ]
    return (
        _insert(dialect)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(DELIVERIES.c.id, *(DELIVERIES.c[column] for column in _KEY_COLUMNS))
    )


_EXISTING = select(DELIVERIES.c.id).where(
    DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
    DELIVERIES.c.kind == bindparam("b_kind"),
    DELIVERIES.c.credential_fingerprint == bindparam("b_fingerprint"),
    DELIVERIES.c.channel == bindparam("b_channel"),
    DELIVERIES.c.recipient == bindparam("b_recipient"),
)
# A resend request's delivery (request ids are letters, digits and dashes: nothing in the mark
# reads as a LIKE pattern).
_BY_REQUEST = (
    select(DELIVERIES.c.id)
    .where(DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
           DELIVERIES.c.credential_fingerprint.like(bindparam("b_mark")))
    .order_by(DELIVERIES.c.id)
    .limit(1)
)  # fmt: skip
_RESEND_ON_ITS_WAY = select(DELIVERIES.c.id).where(
    DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
    DELIVERIES.c.kind == bindparam("b_kind"),
    DELIVERIES.c.channel == bindparam("b_channel"),
    DELIVERIES.c.recipient == bindparam("b_recipient"),
    DELIVERIES.c.credential_fingerprint.like(f"%{RESEND_MARK}%"),
    DELIVERIES.c.status.in_(
        (DeliveryStatus.PENDING, DeliveryStatus.HELD, DeliveryStatus.SENDING,
         DeliveryStatus.UNKNOWN)
    ),
)  # fmt: skip
# Not sent yet: waiting for a worker, or held while Seam re-programs the access method.
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.HELD)
_SUPERSEDE = move(
    Actor.PLANNER, UNSENT, DeliveryStatus.SUPERSEDED,
    DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
    DELIVERIES.c.kind == bindparam("b_kind"),
    # A pending resend of the kept credential stays: it carries the same credential.
    same_credential_of(DELIVERIES.c.credential_fingerprint) != bindparam("b_keep"),
    error_message="a newer credential replaced it", updated_at=bindparam("b_now"),
)  # fmt: skip
# Seam issued the access method again after revoking it: what was held for the credential it
# holds now goes out (a held delivery of another credential is superseded above).
_RELEASE_HELD = move(
    Actor.PLANNER, (DeliveryStatus.HELD,), DeliveryStatus.PENDING,
    DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
    DELIVERIES.c.kind == bindparam("b_kind"),
    same_credential_of(DELIVERIES.c.credential_fingerprint) == bindparam("b_keep"),
    error_message=None, updated_at=bindparam("b_now"),
)  # fmt: skip
# Both before the new deliveries are inserted (those carry the kept credential: neither
# statement touches them). PostgreSQL runs them as one statement, since a data-modifying WITH
# runs whether or not it is read; they never touch the same row (one takes the kept
# credential's held deliveries, the other every other credential's).
_RELEASE_AND_SUPERSEDE = {
    "postgresql": (_SUPERSEDE.add_cte(_RELEASE_HELD.cte("released")),),
    "sqlite": (_RELEASE_HELD, _SUPERSEDE),
}
_HOLD = move(
    Actor.PLANNER, (DeliveryStatus.PENDING,), DeliveryStatus.HELD,
    DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
    DELIVERIES.c.kind.in_(bindparam("b_kinds", expanding=True)),
    error_message=bindparam("b_reason"), updated_at=bindparam("b_now"),
)  # fmt: skip
_CANCEL = move(
    Actor.PLANNER, UNSENT, DeliveryStatus.SUPERSEDED,
    DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
    DELIVERIES.c.kind.not_in(bindparam("b_keep", expanding=True)),
    error_message=bindparam("b_reason"), updated_at=bindparam("b_now"),
)  # fmt: skip
# The sweeper takes back deliveries whose holder stopped renewing its lease: unknown when a
# provider call was in flight (it may have gone out) or a lost answer was still being looked
# up (the holder had claimed an unknown delivery), else pending. The holder's token is
# dropped, so whatever it still tries to record matches nothing.
_EXPIRED_LEASE = (DELIVERIES.c.lease_expires_at < bindparam("b_now"),)
_IN_FLIGHT = (
    exists()
    .where(ATTEMPTS.c.delivery_id == DELIVERIES.c.id,
           ATTEMPTS.c.outcome.in_((AttemptOutcome.IN_FLIGHT, AttemptOutcome.UNKNOWN)))
    .correlate(DELIVERIES)
)  # fmt: skip
_TAKE_BACK = {
    in_flight: move(
        Actor.SWEEPER, (DeliveryStatus.SENDING,),
        DeliveryStatus.UNKNOWN if in_flight else DeliveryStatus.PENDING,
        *_EXPIRED_LEASE, _IN_FLIGHT if in_flight else ~_IN_FLIGHT,
        lease_expires_at=None, claim_token=None, updated_at=bindparam("b_now"),
    ).returning(DELIVERIES.c.id)
    for in_flight in (True, False)
}  # fmt: skip
_IN_FLIGHT_LOST = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.outcome == AttemptOutcome.IN_FLIGHT,
           ATTEMPTS.c.delivery_id.in_(bindparam("b_ids", expanding=True)))
    .values(outcome=AttemptOutcome.UNKNOWN,
            error_message="the worker stopped before the provider answered")
)  # fmt: skip
_PENDING_IDS = (
    select(DELIVERIES.c.id)
    .where(
        DELIVERIES.c.access_method_id == bindparam("b_access_method_id"),
        DELIVERIES.c.status == DeliveryStatus.PENDING,
    )
    .order_by(DELIVERIES.c.id)
)


def _values(new: NewDelivery) -> dict[str, object]:
    values = {name: getattr(new, name) for name in _NEW_DELIVERY_FIELDS}
    return values | {"planned_destination_masked": new.destination_masked}


def _plan_all(run: Run, dialect: str, news: Sequence[NewDelivery]) -> list[tuple[int, bool]]:
    """Each of `news` planned (its id, and whether it was created now), in their order."""
    now = utcnow()
    created: dict[tuple[object, ...], int] = {}
    for first in range(0, len(news), _ROWS_PER_INSERT):
        chunk = news[first : first + _ROWS_PER_INSERT]
        params = {
            f"r{row}_{name}": value
            for row, new in enumerate(chunk)
            for name, value in _values(new).items()
        }
        for row in range(len(chunk)):
            params[f"r{row}_created_at"] = params[f"r{row}_updated_at"] = now
        inserted = run(_insert_rows(dialect, len(chunk)), params)
        created |= {tuple(row[1:]): int(row[0]) for row in inserted.rows}
    planned = []
    for new in news:
        delivery_id = created.pop(tuple(getattr(new, column) for column in _KEY_COLUMNS), None)
        planned.append((delivery_id, True) if delivery_id is not None else _existing(run, new))
    return planned


def _existing(run: Run, new: NewDelivery) -> tuple[int, bool]:
    """The delivery that stands for `new`, which its insert found planned before."""
    key = {"b_access_method_id": new.access_method_id, "b_kind": new.kind,
           "b_fingerprint": new.credential_fingerprint, "b_channel": new.channel,
           "b_recipient": new.recipient}  # fmt: skip
    existing = run(_EXISTING, key).scalar()
    if existing is None:
        # A resend's fallback meeting another resend on its way on that channel (the partial
        # unique index): that one stands for it.
        found = run(_RESEND_ON_ITS_WAY, key).scalars()
        if len(found) != 1:
            raise RuntimeError(f"no single delivery stands for a planned one: {len(found)} found")
        existing = found[0]
    return int(existing), False


@dataclass(frozen=True)
class Planned:
    created: int
    # New deliveries claimed in the planning transaction (see plan_credential).
    claimed: list[Claimed]
    # The access method's deliveries still pending (not those claimed).
    pending: list[int]


class DeliveryStore(SendingStore):
    # A guest's messages of one credential: an SMS, an email, and the odd third.
    AHEAD: ClassVar[tuple[Executable, ...]] = (
        *_RELEASE_AND_SUPERSEDE["postgresql"],
        *(_insert_rows("postgresql", count) for count in (1, 2, 3)),
        _PENDING_IDS,
    )

    def plan_delivery(self, new: NewDelivery) -> tuple[int, bool]:
        """Insert a delivery unless one exists for this credential and channel.

        Returns the delivery's id and whether it was created now.
        """
        with self._together() as run:
            return _plan_all(run, self.engine.dialect.name, [new])[0]

    def plan_credential(
        self,
        access_method_id: str,
        news: Sequence[NewDelivery],
        kind: str,
        fingerprint: str,
        *,
        claim_for: timedelta | None = None,
    ) -> Planned:
        """Plan one credential's messages in one transaction: release what was held for this
        credential, supersede unsent deliveries of any other credential of this kind, insert
        those not planned yet, and list what is pending for the access method. With
        `claim_for`, on PostgreSQL, the new ones are claimed for that lease in the same
        transaction, to be sent by the caller at once (elsewhere each is claimed on its own
        when sent)."""
        with self._together() as run:
            keep = {"b_access_method_id": access_method_id, "b_kind": kind,
                    "b_keep": fingerprint, "b_now": utcnow()}  # fmt: skip
            for statement in _RELEASE_AND_SUPERSEDE[self.engine.dialect.name]:
                run(statement, keep)
            planned = _plan_all(run, self.engine.dialect.name, news)
            new_ids = [delivery_id for delivery_id, created in planned if created]
            claimed, pending = (
                claim_planned(run, access_method_id, new_ids, claim_for)
                if claim_for and self._postgres
                else ([], None)
            )
            if pending is None:
                pending = run(_PENDING_IDS, {"b_access_method_id": access_method_id}).scalars()
            return Planned(len(new_ids), claimed, pending)

    def hold_pending(self, access_method_id: str, kinds: Sequence[str], reason: str) -> int:
        """Hold the access method's pending deliveries of `kinds` until Seam issues it again
        (plan_credential releases or supersedes them). Returns how many were held."""
        with self._connection() as connection:
            held = connection.execute(
                _HOLD,
                {"b_access_method_id": access_method_id, "b_kinds": list(kinds),
                 "b_reason": reason, "b_now": utcnow()},
            )  # fmt: skip
            return int(held.rowcount)

    def plan_resend(self, new: NewDelivery, request_id: str) -> tuple[int, bool] | None:
        """Insert a resend the front desk asked for, once per request.

        A request already planned (for whatever credential was current then) returns its
        delivery, not created. None, and nothing planned, while a message of this kind to this
        guest on this channel is still on its way (pending, being sent, or in doubt): a resend
        then could make two. `new.credential_fingerprint` carries the request's mark.
        """
        with self._connection() as connection:
            existing = connection.execute(
                _BY_REQUEST, {"b_access_method_id": new.access_method_id,
                              "b_mark": f"%{RESEND_MARK}{request_id}"},
            ).scalar()  # fmt: skip
            if existing is not None:
                return int(existing), False
            unsent = connection.execute(
                select(DELIVERIES.c.id).where(
                    DELIVERIES.c.access_method_id == new.access_method_id,
                    DELIVERIES.c.kind == new.kind,
                    DELIVERIES.c.channel == new.channel,
                    DELIVERIES.c.recipient == new.recipient,
                    DELIVERIES.c.status.in_(ON_ITS_WAY),
                )
            ).first()
            if unsent is not None:
                return None
            # Two requests at the same instant both get here: the partial unique index on
            # resends on their way lets one insert (the other waits for it, then inserts
            # nothing), so at most one new delivery goes out.
            values = _values(new)
            created = connection.execute(_INSERT_NEW[connection.dialect.name], values).scalar()
            if created is not None:
                return int(created), True
            same_request = connection.execute(
                _BY_REQUEST, {"b_access_method_id": new.access_method_id,
                              "b_mark": f"%{RESEND_MARK}{request_id}"},
            ).scalar()  # fmt: skip
            return None if same_request is None else (int(same_request), False)

    def cancel_pending(self, access_method_id: str, reason: str, keep: Sequence[str] = ()) -> int:
        """Supersede the access method's unsent (pending or held) deliveries, but those of the
        `keep` kinds."""
        with self._connection() as connection:
            result = connection.execute(
                _CANCEL,
                {"b_access_method_id": access_method_id, "b_keep": list(keep),
                 "b_reason": reason, "b_now": utcnow()},
            )  # fmt: skip
            return int(result.rowcount)

    def delivered(self, access_method_ids: Sequence[str], kinds: Sequence[str]) -> list[Delivery]:
        """These access methods' deliveries of `kinds` that went out (sent or delivered, or a
        dry run's)."""
        with self._transaction() as session:
            found = session.scalars(
                select(Delivery)
                .where(
                    Delivery.access_method_id.in_(access_method_ids),
                    Delivery.kind.in_(kinds),
                    Delivery.status.in_(SENT_STATUSES),
                )
                .order_by(Delivery.id)
            )
            return list(found)

    def pending_delivery_ids(self, access_method_id: str) -> list[int]:
        with self._connection() as connection:
            pending = connection.execute(_PENDING_IDS, {"b_access_method_id": access_method_id})
            return list(pending.scalars())

    def credential_is_live(self, delivery: Delivery) -> bool:
        """Whether any channel still delivers (or delivered) this delivery's credential to its
        recipient (for a resend: this resend)."""
        with self._transaction() as session:
            found = session.scalar(
                select(Delivery.id).where(
                    Delivery.access_method_id == delivery.access_method_id,
                    Delivery.kind == delivery.kind,
                    # Exact, a resend's mark included: a resend the desk asked for that
                    # reaches no channel is reported, though the original was sent.
                    Delivery.credential_fingerprint == delivery.credential_fingerprint,
                    Delivery.recipient == delivery.recipient,
                    Delivery.status.in_(LIVE),
                )
            )
            return found is not None

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self._transaction() as session:
            return session.get(Delivery, delivery_id, options=[selectinload(Delivery.attempts)])

    def siblings(self, delivery: Delivery) -> list[Delivery]:
        """Every delivery of the same credential to the same recipient (any channel, any
        message), this one included."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .where(
                        Delivery.access_method_id == delivery.access_method_id,
                        Delivery.credential_fingerprint == delivery.credential_fingerprint,
                        Delivery.recipient == delivery.recipient,
                    )
                    .order_by(Delivery.id)
                )
            )

    # -- the sweeper's view ----------------------------------------------------------------

    def recover_expired_leases(self, now: datetime) -> list[int]:
        """Take back deliveries whose worker stopped renewing its lease: unknown if a call was
        in flight, pending otherwise. Returns their ids, to be handed on at once."""
        with self._connection() as connection:
            unknown = list(connection.execute(_TAKE_BACK[True], {"b_now": now}).scalars())
            if unknown:
                connection.execute(_IN_FLIGHT_LOST, {"b_ids": unknown})
            pending = list(connection.execute(_TAKE_BACK[False], {"b_now": now}).scalars())
        return sorted(unknown + pending)

    def due_delivery_ids(self, now: datetime, waited_since: datetime, limit: int) -> list[int]:
        """Pending or unknown deliveries that are due (retry and window) and were not handed
        on recently."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN)),
                        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                        or_(
                            Delivery.enqueued_at.is_(None),
                            Delivery.enqueued_at < waited_since,
                            # handed on before it was due: that task found nothing to claim
                            Delivery.enqueued_at < Delivery.not_before,
                        ),
                        # The delivery window: this is how beat releases a scheduled delivery.
                        or_(Delivery.not_before.is_(None), Delivery.not_before <= now),
                        or_(Delivery.expires_at.is_(None), Delivery.expires_at > now),
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )

    def mark_deliveries_enqueued(self, delivery_ids: Sequence[int]) -> None:
        if not delivery_ids:
            return
        with self._transaction() as session:
            session.execute(
                update(Delivery).where(Delivery.id.in_(delivery_ids)).values(enqueued_at=utcnow())
            )

    def recent_deliveries(self, limit: int = 20) -> list[Delivery]:
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery)
                    .options(selectinload(Delivery.attempts))
                    .order_by(Delivery.id.desc())
                    .limit(limit)
                )
            )
