"""Sending a delivery: the claim, its attempts and how each ends. The worker's hot path.

    pending ──claim──> sending ──begin_attempt──> (provider call) ──finish_attempt──> sent
       ^                  │                                           ├──> failed
       │                  │                                           ├──> pending (retry later)
       │                  │                                           └──> unknown
       │                  └──release──> pending | superseded | skipped
       └───── unknown ──claim (resolve first)──> sending ...
    sending whose lease expired ──recover──> unknown (a call was in flight) | pending
    pending | unknown past its window's end ──sweeper──> expired (app/ledger/window.py)

A scheduled delivery (not_before, expires_at: app/delivery/window.py) is claimable only inside its
window, on every claim path.

A claim and an in-flight attempt are committed before any provider is called, so a process
that dies mid-call leaves a record saying a message may have gone out.

Every delivery passes through here two or three times, so these transactions are Core
statements built once at import: an ORM session per step cost more CPU than the SQL it sent
(profiled: about half of a worker's time went to session bookkeeping).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.ledger.base import LedgerBase
from app.ledger.models import (
    FINGERPRINT_LENGTH,
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    utcnow,
)

# Declarative models' __table__ is typed as a FromClause; it is a Table.
DELIVERIES = cast(Table, Delivery.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DRY_RUN, DeliveryStatus.DELIVERED)
CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN)

_ATTEMPTS_OF = (
    select(ATTEMPTS).where(ATTEMPTS.c.delivery_id == bindparam("b_id")).order_by(ATTEMPTS.c.id)
)
_CLAIM = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"), DELIVERIES.c.status == bindparam("b_previous"),
           # the window again: a reschedule may land between the claim's read and this write
           or_(DELIVERIES.c.not_before.is_(None), DELIVERIES.c.not_before <= bindparam("b_now")),
           or_(DELIVERIES.c.expires_at.is_(None), DELIVERIES.c.expires_at > bindparam("b_now")))
    .values(status=DeliveryStatus.SENDING, lease_expires_at=bindparam("b_lease"),
            updated_at=bindparam("b_now"))
)  # fmt: skip
_OTHER = DELIVERIES.alias("other")


def same_credential_of(fingerprint: Any) -> Any:
    """The credential part of a fingerprint column (a resend's mark cut off: see
    FINGERPRINT_LENGTH in app/ledger/models.py)."""
    return func.substr(fingerprint, 1, FINGERPRINT_LENGTH)


# The claim's fast path: a pending delivery, due, taken in one statement that also says
# whether it has attempts to load and whether the guest already holds another credential.
# PostgreSQL only: SQLite renders RETURNING's columns unqualified, which would turn the
# correlated subqueries' `deliveries.id` into the subquery's own `id`.
_CLAIM_WHERE_DUE = (
    DELIVERIES.c.status == DeliveryStatus.PENDING,
    or_(
        DELIVERIES.c.next_attempt_at.is_(None),
        DELIVERIES.c.next_attempt_at <= bindparam("b_now"),
    ),
    # The delivery window (app/delivery/window.py): a scheduled delivery is not claimed before its
    # time, nor once the stay is over, whoever asks (a duplicated or early task included).
    or_(DELIVERIES.c.not_before.is_(None), DELIVERIES.c.not_before <= bindparam("b_now")),
    or_(DELIVERIES.c.expires_at.is_(None), DELIVERIES.c.expires_at > bindparam("b_now")),
)
_CLAIMED_COLUMNS = (
    *DELIVERIES.c,
    exists()
    .where(ATTEMPTS.c.delivery_id == DELIVERIES.c.id)
    .correlate(DELIVERIES)
    .label("has_attempts"),
    exists()
    .where(
        _OTHER.c.access_method_id == DELIVERIES.c.access_method_id,
        _OTHER.c.kind == DELIVERIES.c.kind,
        _OTHER.c.channel == DELIVERIES.c.channel,
        _OTHER.c.user_identity_id == DELIVERIES.c.user_identity_id,
        # A resend of the same credential is not "another code".
        same_credential_of(_OTHER.c.credential_fingerprint)
        != same_credential_of(DELIVERIES.c.credential_fingerprint),
        _OTHER.c.status.in_(SENT_STATUSES),
    )
    .correlate(DELIVERIES)
    .label("other_credential_sent"),
)
_CLAIM_SET = dict(
    status=DeliveryStatus.SENDING, lease_expires_at=bindparam("b_lease"),
    updated_at=bindparam("b_now"),
)  # fmt: skip
_CLAIM_PENDING = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"), *_CLAIM_WHERE_DUE)
    .values(**_CLAIM_SET)
    .returning(*_CLAIMED_COLUMNS)
)
# Deliveries just planned, to be sent in the same task: claimed in the planning transaction.
_CLAIM_PENDING_MANY = (
    update(DELIVERIES)
    # PostgreSQL only (see claim_planned): an array parameter keeps the statement cacheable,
    # where an expanding IN is re-rendered on every execution.
    .where(DELIVERIES.c.id == any_(bindparam("b_ids", type_=ARRAY(Integer))), *_CLAIM_WHERE_DUE)
    .values(**_CLAIM_SET)
    .returning(*_CLAIMED_COLUMNS)
)
# The claim's other path (an unknown delivery, or SQLite): the same columns, read first.
_READ = select(*_CLAIMED_COLUMNS).where(DELIVERIES.c.id == bindparam("b_id"))
_RELEASE = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"), DELIVERIES.c.status == DeliveryStatus.SENDING)
    .values(status=bindparam("b_status"), error_message=bindparam("b_reason"),
            next_attempt_at=bindparam("b_next"), lease_expires_at=None,
            updated_at=bindparam("b_now"))
)  # fmt: skip
_BEGIN = insert(ATTEMPTS).returning(ATTEMPTS.c.id)
_EXTEND_LEASE = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_id"))
    .values(lease_expires_at=bindparam("b_lease"), updated_at=bindparam("b_now"))
)
_FINISH_ATTEMPT = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("b_id"))
    .values(outcome=bindparam("b_outcome"), finished_at=bindparam("b_now"),
            duration_ms=bindparam("b_duration_ms"),
            provider_message_id=bindparam("b_provider_message_id"),
            error_code=bindparam("b_error_code"), error_message=bindparam("b_error_message"))
)  # fmt: skip
_SENDING = and_(
    DELIVERIES.c.id == bindparam("b_delivery_id"), DELIVERIES.c.status == DeliveryStatus.SENDING
)
_END_SENDING = (
    update(DELIVERIES)
    .where(_SENDING)
    .values(status=bindparam("b_status"), provider_message_id=bindparam("b_provider_message_id"),
            error_code=bindparam("b_error_code"), error_message=bindparam("b_error_message"),
            next_attempt_at=bindparam("b_next"), lease_expires_at=None,
            updated_at=bindparam("b_now"), sent_at=bindparam("b_sent_at"))
)  # fmt: skip
_END_SENDING_WITH_DEADLINE = _END_SENDING.values(retry_deadline=bindparam("b_deadline"))
# PostgreSQL runs a data-modifying WITH even when nothing reads it: the attempt and its
# delivery end in one statement (one round trip and one parse instead of two).
_FINISH_BOTH = {
    deadline: statement.add_cte(_FINISH_ATTEMPT.cte("finished_attempt"))
    for deadline, statement in ((False, _END_SENDING), (True, _END_SENDING_WITH_DEADLINE))
}
_SETTLE_NOT_RECEIVED = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("b_id"))
    .values(outcome=AttemptOutcome.TRANSIENT_ERROR, error_code="not_received",
            error_message="the provider has no such message: sending again")
)  # fmt: skip
_SETTLE_FOUND = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("b_id"))
    .values(outcome=AttemptOutcome.SENT, provider_message_id=bindparam("b_provider_message_id"),
            error_code=None, error_message=None)
    .returning(ATTEMPTS.c.delivery_id)
)  # fmt: skip


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    # The attempt whose answer was lost, when the claim took an `unknown` delivery.
    unresolved: Attempt | None
    # Whether this guest was already sent another credential of the same access method on
    # this channel: the message then says the code changed.
    other_credential_sent: bool


@dataclass(frozen=True)
class InFlight:
    """An attempt recorded as in flight: what finishing it needs, without reading it back."""

    id: int
    delivery_id: int
    started_at: datetime


@dataclass(frozen=True)
class AttemptEnd:
    """How a provider call ended, and what it means for its delivery."""

    outcome: AttemptOutcome
    status: DeliveryStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_attempt_at: datetime | None = None
    retry_deadline: datetime | None = None


class SendingStore(LedgerBase):
    def claim_delivery(self, delivery_id: int, lease: timedelta) -> Claimed | None:
        """Take a due pending (or unknown) delivery for `lease`; None if it is not ours to send.

        The returned delivery carries its attempts (oldest first).
        """
        now = utcnow()
        with self._connection() as connection:
            taken = None
            if connection.dialect.name == "postgresql":
                fast = connection.execute(
                    _CLAIM_PENDING, {"b_id": delivery_id, "b_now": now, "b_lease": now + lease}
                )
                taken = fast.mappings().first()
            if taken is not None:
                return _claimed(connection, taken)
            # Not a due pending delivery: an unknown one to resolve, or nothing to claim.
            row = connection.execute(_READ, {"b_id": delivery_id}).mappings().first()
            if row is None or row["status"] not in CLAIMABLE:
                return None
            if row["next_attempt_at"] is not None and row["next_attempt_at"] > now:
                return None
            if not in_window(row["not_before"], row["expires_at"], now):
                return None  # scheduled for later, or the stay is over (the sweeper expires it)
            claimed = connection.execute(
                _CLAIM,
                {"b_id": delivery_id, "b_previous": row["status"], "b_lease": now + lease,
                 "b_now": now},
            )  # fmt: skip
            if claimed.rowcount != 1:
                return None  # another worker claimed it between our read and our write
            delivery = _delivery(row, status=DeliveryStatus.SENDING, lease_expires_at=now + lease)
            if row["has_attempts"]:
                delivery.attempts = _attempts(connection, delivery_id)
            other_sent = delivery.is_guest_message and bool(row["other_credential_sent"])
        unresolved = None
        if row["status"] == DeliveryStatus.UNKNOWN:
            unresolved = next(
                (a for a in reversed(delivery.attempts) if a.outcome == AttemptOutcome.UNKNOWN),
                None,
            )
        return Claimed(delivery, unresolved, other_sent)

    def release_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        reason: str,
        *,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Give a claimed delivery back (pending, unknown) or end it unsent."""
        with self._connection() as connection:
            connection.execute(
                _RELEASE,
                {"b_id": delivery_id, "b_status": status, "b_reason": reason,
                 "b_next": next_attempt_at, "b_now": utcnow()},
            )  # fmt: skip

    def begin_attempt(
        self,
        delivery_id: int,
        provider: str,
        message_fingerprint: str | None,
        lease: timedelta | None,
    ) -> InFlight:
        """Record that a provider call is about to be made (committed before it is).

        `lease` renews the claim from now; None keeps the claim's (taken a moment ago).
        """
        now = utcnow()
        with self._connection() as connection:
            attempt_id: int = connection.execute(
                _BEGIN,
                {"delivery_id": delivery_id, "started_at": now, "outcome": AttemptOutcome.IN_FLIGHT,
                 "provider": provider, "message_fingerprint": message_fingerprint},
            ).scalar_one()  # fmt: skip
            if lease is not None:
                connection.execute(
                    _EXTEND_LEASE, {"b_id": delivery_id, "b_lease": now + lease, "b_now": now}
                )
        return InFlight(attempt_id, delivery_id, now)

    def finish_attempt(self, attempt: InFlight, end: AttemptEnd) -> None:
        """Record how a provider call ended and move its delivery on, in one transaction."""
        now = utcnow()
        params: dict[str, Any] = {
            "b_id": attempt.id,
            "b_outcome": end.outcome,
            "b_duration_ms": int((now - attempt.started_at).total_seconds() * 1000),
            "b_delivery_id": attempt.delivery_id,
            "b_status": end.status,
            "b_provider_message_id": end.provider_message_id,
            "b_error_code": end.error_code,
            "b_error_message": end.error_message,
            "b_next": end.next_attempt_at,
            "b_now": now,
            "b_sent_at": now if end.status in SENT_STATUSES else None,
        }
        with_deadline = end.retry_deadline is not None
        if with_deadline:
            params["b_deadline"] = end.retry_deadline
        with self._connection() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(_FINISH_BOTH[with_deadline], params)
                return
            connection.execute(_FINISH_ATTEMPT, params)
            end_sending = _END_SENDING_WITH_DEADLINE if with_deadline else _END_SENDING
            connection.execute(end_sending, params)

    def accounted_for(
        self, provider_message_ids: Sequence[str], access_method_id: str, besides: int
    ) -> set[str]:
        """Those of the provider's message ids that an attempt of the access method's deliveries
        (other than the attempt `besides`) already holds.

        A lost send is looked for among the provider's recent messages by destination and body;
        a resend has the same body as the message it repeats, and that one is accounted for.
        """
        if not provider_message_ids:
            return set()
        with self._connection() as connection:
            found = connection.execute(
                select(ATTEMPTS.c.provider_message_id).where(
                    ATTEMPTS.c.delivery_id.in_(
                        select(DELIVERIES.c.id).where(
                            DELIVERIES.c.access_method_id == access_method_id
                        )
                    ),
                    ATTEMPTS.c.provider_message_id.in_(list(provider_message_ids)),
                    ATTEMPTS.c.id != besides,
                )
            )
            return {str(message_id) for message_id in found.scalars()}

    def settle_unknown(self, attempt_id: int, provider_message_id: str | None) -> None:
        """Record what the provider said about a call whose answer was lost.

        Found: the attempt and its delivery are sent. Not found: the attempt is marked as never
        received, and the claimed delivery goes on to send again.
        """
        now = utcnow()
        with self._connection() as connection:
            if provider_message_id is None:
                connection.execute(_SETTLE_NOT_RECEIVED, {"b_id": attempt_id})
                return
            delivery_id = connection.execute(
                _SETTLE_FOUND, {"b_id": attempt_id, "b_provider_message_id": provider_message_id}
            ).scalar_one()
            connection.execute(
                _END_SENDING,
                {"b_delivery_id": delivery_id, "b_status": DeliveryStatus.SENT,
                 "b_provider_message_id": provider_message_id, "b_error_code": None,
                 "b_error_message": None, "b_next": None, "b_now": now, "b_sent_at": now},
            )  # fmt: skip


def in_window(not_before: datetime | None, expires_at: datetime | None, now: datetime) -> bool:
    """Whether a delivery's window (app/delivery/window.py) lets it be sent at `now`."""
    return (not_before is None or not_before <= now) and (expires_at is None or now < expires_at)


def _delivery(row: Any, **changes: Any) -> Delivery:
    """A detached Delivery from a Core row (what the ORM would have loaded), with `changes`."""
    values = {column.key: row[column.key] for column in DELIVERIES.c}
    return Delivery(**(values | changes))


def claim_planned(
    connection: Connection, delivery_ids: Sequence[int], lease: timedelta
) -> list[Claimed]:
    """Claim deliveries planned in this transaction (PostgreSQL; elsewhere none are claimed
    here, and each is claimed on its own when sent)."""
    if not delivery_ids or connection.dialect.name != "postgresql":
        return []
    now = utcnow()
    taken = connection.execute(
        _CLAIM_PENDING_MANY, {"b_ids": list(delivery_ids), "b_now": now, "b_lease": now + lease}
    )
    return sorted(
        (_claimed(connection, row) for row in taken.mappings().all()),
        key=lambda claimed: claimed.delivery.id,
    )


def _claimed(connection: Connection, row: Any) -> Claimed:
    """A pending delivery just claimed, from a row of _CLAIMED_COLUMNS."""
    delivery = _delivery(row)
    if row["has_attempts"]:
        delivery.attempts = _attempts(connection, delivery.id)
    return Claimed(delivery, None, delivery.is_guest_message and bool(row["other_credential_sent"]))


def _attempts(connection: Connection, delivery_id: int) -> list[Attempt]:
    rows = connection.execute(_ATTEMPTS_OF, {"b_id": delivery_id}).mappings().all()
    return [Attempt(**row) for row in rows]
