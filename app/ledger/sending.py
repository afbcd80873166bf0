"""Sending a delivery: the claim, its attempts and how each ends. The worker's hot path.

Every status change here is one of app/ledger/delivery_states.py's transitions (`move`).

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

Fencing: each claim draws a random `claim_token`. Every write its holder makes (begin_attempt,
finish_attempt, release, settle) matches that token and `sending` in the statement that makes
it; begin_attempt also needs the lease not to have run out, and renews it. A holder whose
claim the sweeper took back (its lease ran out: a worker stalled, its heartbeat stopped) finds
its write matched nothing: it records nothing and makes no provider call. The heartbeat
(app/ledger/leases.py) renews the leases of the claims a living worker holds (`renew_leases`).

Every delivery passes through here two or three times, so these transactions are Core
statements built once at import: an ORM session per step cost more CPU than the SQL it sent
(profiled: about half of a worker's time went to session bookkeeping).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, cast

from sqlalchemy import (
    Executable,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from app.ledger.base import LedgerBase, Run, runner
from app.ledger.delivery_states import Actor, move
from app.ledger.models import (
    FINGERPRINT_LENGTH,
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    ProviderEvent,
    one_of,
    utcnow,
)
from app.ledger.outbox import owe_delivery

# Declarative models' __table__ is typed as a FromClause; it is a Table.
DELIVERIES = cast(Table, Delivery.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
PROVIDER_EVENTS = cast(Table, ProviderEvent.__table__)
SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DRY_RUN, DeliveryStatus.DELIVERED)
CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN)

_ATTEMPTS_OF = (
    select(ATTEMPTS).where(ATTEMPTS.c.delivery_id == bindparam("b_id")).order_by(ATTEMPTS.c.id)
)
_CLAIM_SET: dict[str, Any] = dict(
    lease_expires_at=bindparam("b_lease"), claim_token=bindparam("b_token"),
    updated_at=bindparam("b_now"),
)  # fmt: skip
_CLAIM = move(
    Actor.WORKER, CLAIMABLE, DeliveryStatus.SENDING,
    DELIVERIES.c.id == bindparam("b_id"), DELIVERIES.c.status == bindparam("b_previous"),
    # the window again: a reschedule may land between the claim's read and this write
    or_(DELIVERIES.c.not_before.is_(None), DELIVERIES.c.not_before <= bindparam("b_now")),
    or_(DELIVERIES.c.expires_at.is_(None), DELIVERIES.c.expires_at > bindparam("b_now")),
    **_CLAIM_SET,
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
        one_of(_OTHER.c.status, SENT_STATUSES),
    )
    .correlate(DELIVERIES)
    .label("other_credential_sent"),
)
_CLAIM_PENDING = move(
    Actor.WORKER, (DeliveryStatus.PENDING,), DeliveryStatus.SENDING,
    DELIVERIES.c.id == bindparam("b_id"), *_CLAIM_WHERE_DUE, **_CLAIM_SET,
).returning(*_CLAIMED_COLUMNS)  # fmt: skip
# Deliveries just planned, to be sent in the same task: claimed in the planning transaction.
# PostgreSQL only (see claim_planned): an array parameter keeps the statement cacheable,
# where an expanding IN is re-rendered on every execution.
_CLAIM_PENDING_MANY = move(
    Actor.WORKER, (DeliveryStatus.PENDING,), DeliveryStatus.SENDING,
    DELIVERIES.c.id == any_(bindparam("b_ids", type_=ARRAY(Integer))), *_CLAIM_WHERE_DUE,
    **_CLAIM_SET,
).returning(*_CLAIMED_COLUMNS)  # fmt: skip
# With that claim, in the same statement, the access method's other pending deliveries (planned
# before, released just now, or not due yet): the caller hands those on. The statement's
# snapshot still shows the claimed rows pending, so they are left out by id.
_CLAIMED_NOW = _CLAIM_PENDING_MANY.cte("claimed")
_BESIDE = DELIVERIES.alias("beside")
_CLAIM_PLANNED = select(
    *_CLAIMED_NOW.c,
    select(func.array_agg(aggregate_order_by(_BESIDE.c.id, _BESIDE.c.id)))
    .where(
        _BESIDE.c.access_method_id == bindparam("b_access_method_id"),
        _BESIDE.c.status == DeliveryStatus.PENDING,
        _BESIDE.c.id.not_in(select(_CLAIMED_NOW.c.id)),
    )
    .scalar_subquery()
    .label("still_pending"),
).add_cte(_CLAIMED_NOW)
# The claim's other path (an unknown delivery, or SQLite): the same columns, read first.
_READ = select(*_CLAIMED_COLUMNS).where(DELIVERIES.c.id == bindparam("b_id"))
# What a holder's claim is: its delivery, still sending, under its token.
_HELD = (
    DELIVERIES.c.id == bindparam("b_delivery_id"),
    DELIVERIES.c.claim_token == bindparam("b_token"),
)
# A claim given back, or ended without a provider call (superseded, held, skipped; failed when
# the provider never answered for the whole window: its follow-up is then owed).
_RELEASE = move(
    Actor.WORKER, (DeliveryStatus.SENDING,),
    (DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN, DeliveryStatus.FAILED,
     DeliveryStatus.SUPERSEDED, DeliveryStatus.SKIPPED, DeliveryStatus.HELD),
    *_HELD,
    error_message=bindparam("b_reason"), next_attempt_at=bindparam("b_next"),
    lease_expires_at=None, claim_token=None, follow_up_due_at=bindparam("b_follow_up"),
    updated_at=bindparam("b_now"),
)  # fmt: skip
# The fence: the holder's claim is current (its token, sending, its lease not run out). The
# attempt is recorded only through it, in the same statement on PostgreSQL, and the lease is
# renewed by it; the delivery shows where this attempt goes.
_FENCE = (
    update(DELIVERIES)
    .where(*_HELD, DELIVERIES.c.status == DeliveryStatus.SENDING,
           DELIVERIES.c.lease_expires_at > bindparam("b_now"))
    .values(lease_expires_at=bindparam("b_lease"), updated_at=bindparam("b_now"),
            destination_masked=func.coalesce(bindparam("b_destination_masked", type_=String),
                                             DELIVERIES.c.destination_masked),
            destination_hash=func.coalesce(bindparam("b_destination_hash", type_=String),
                                           DELIVERIES.c.destination_hash))
    .returning(DELIVERIES.c.id)
)  # fmt: skip
_ATTEMPT_VALUES = {
    "delivery_id": bindparam("b_delivery_id", type_=Integer),
    "started_at": bindparam("b_now", type_=ATTEMPTS.c.started_at.type),
    "outcome": literal(AttemptOutcome.IN_FLIGHT.value, String),
    "provider": bindparam("b_provider", type_=String),
    "message_fingerprint": bindparam("b_message_fingerprint", type_=String),
    "destination_masked": bindparam("b_destination_masked", type_=String),
    "destination_hash": bindparam("b_destination_hash", type_=String),
}
_BEGIN = insert(ATTEMPTS).values(**_ATTEMPT_VALUES).returning(ATTEMPTS.c.id)
_FENCED = _FENCE.cte("fenced")
# PostgreSQL: the fence and the attempt in one statement; no row fenced, no attempt.
_FENCE_AND_BEGIN = (
    insert(ATTEMPTS)
    .from_select(list(_ATTEMPT_VALUES), select(*_ATTEMPT_VALUES.values()).select_from(_FENCED))
    .add_cte(_FENCED)
    .returning(ATTEMPTS.c.id)
)
_RENEW = (
    update(DELIVERIES)
    .where(DELIVERIES.c.status == DeliveryStatus.SENDING,
           DELIVERIES.c.claim_token.in_(bindparam("b_tokens", expanding=True)))
    .values(lease_expires_at=bindparam("b_lease"), updated_at=bindparam("b_now"))
    .returning(DELIVERIES.c.id)
)  # fmt: skip
_FINISH_ATTEMPT = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("b_id"))
    .values(outcome=bindparam("b_outcome"), finished_at=bindparam("b_now"),
            duration_ms=bindparam("b_duration_ms"),
            provider_message_id=bindparam("b_provider_message_id"),
            error_code=bindparam("b_error_code"), error_message=bindparam("b_error_message"))
)  # fmt: skip
_END_SENDING = move(
    Actor.WORKER, (DeliveryStatus.SENDING,),
    (DeliveryStatus.SENT, DeliveryStatus.DRY_RUN, DeliveryStatus.FAILED,
     DeliveryStatus.PENDING, DeliveryStatus.UNKNOWN),
    *_HELD,
    provider_message_id=bindparam("b_provider_message_id"),
    error_code=bindparam("b_error_code"), error_message=bindparam("b_error_message"),
    next_attempt_at=bindparam("b_next"), lease_expires_at=None, claim_token=None,
    follow_up_due_at=bindparam("b_follow_up"), updated_at=bindparam("b_now"),
    sent_at=bindparam("b_sent_at"),
)  # fmt: skip
_END_SENDING_WITH_DEADLINE = _END_SENDING.values(retry_deadline=bindparam("b_deadline"))
# Reports that arrived before this message's id was recorded (app/ledger/provider_events.py).
_HAS_HELD_REPORTS = (
    exists()
    .where(PROVIDER_EVENTS.c.delivery_id == bindparam("b_delivery_id"),
           PROVIDER_EVENTS.c.held_target.is_not(None),
           PROVIDER_EVENTS.c.provider_message_id == bindparam("b_provider_message_id"))
)  # fmt: skip
# PostgreSQL runs a data-modifying WITH even when nothing reads it: the delivery (fenced) and
# its attempt end in one statement, the attempt only if the delivery was still this holder's.
_FINISH_BOTH = {
    deadline: (
        _FINISH_ATTEMPT.where(exists(select(ended.c.id)))
        .add_cte(ended)
        .returning(ATTEMPTS.c.id, _HAS_HELD_REPORTS.label("held_reports"))
    )
    for deadline, ended in (
        (False, _END_SENDING.returning(DELIVERIES.c.id).cte("ended")),
        (True, _END_SENDING_WITH_DEADLINE.returning(DELIVERIES.c.id).cte("ended")),
    )
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
)  # fmt: skip
# The holder's claim, still current: nothing changes but the time (a fence for writes to the
# attempts alone).
_TOUCH = (
    update(DELIVERIES)
    .where(*_HELD, DELIVERIES.c.status == DeliveryStatus.SENDING)
    .values(updated_at=bindparam("b_now"))
)  # fmt: skip


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    # The attempt whose answer was lost, when the claim took an `unknown` delivery.
    unresolved: Attempt | None
    # Whether this guest was already sent another credential of the same access method on
    # this channel: the message then says the code changed.
    other_credential_sent: bool

    @property
    def token(self) -> str:
        """The claim's token: every write its holder makes is fenced by it."""
        assert self.delivery.claim_token is not None
        return self.delivery.claim_token


@dataclass(frozen=True)
class Destination:
    """Where an attempt goes: masked for people, and its keyed hash for search."""

    masked: str | None
    hash: str | None


@dataclass(frozen=True)
class InFlight:
    """An attempt recorded as in flight: what finishing it needs, without reading it back."""

    id: int
    delivery_id: int
    started_at: datetime
    token: str


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


class Finished(Enum):
    """What finish_attempt recorded."""

    LOST = "lost"  # the claim was taken back: nothing recorded
    RECORDED = "recorded"
    # Recorded, and a provider report about this message was waiting for its id.
    REPORTS_HELD = "reports_held"


def new_token() -> str:
    return uuid.uuid4().hex


class SendingStore(LedgerBase):
    AHEAD: ClassVar[tuple[Executable, ...]] = (
        _CLAIM_PLANNED,
        _FENCE_AND_BEGIN,
        *_FINISH_BOTH.values(),
    )

    def claim_delivery(self, delivery_id: int, lease: timedelta) -> Claimed | None:
        """Take a due pending (or unknown) delivery for `lease`; None if it is not ours to send.

        The claim draws a fresh token (Claimed.token). The returned delivery carries its
        attempts (oldest first).
        """
        now = utcnow()
        token = new_token()
        with self._connection() as connection:
            taken = None
            if connection.dialect.name == "postgresql":
                fast = connection.execute(
                    _CLAIM_PENDING,
                    {"b_id": delivery_id, "b_now": now, "b_lease": now + lease, "b_token": token},
                )
                taken = fast.mappings().first()
            if taken is not None:
                return _claimed(runner(connection), taken)
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
                 "b_now": now, "b_token": token},
            )  # fmt: skip
            if claimed.rowcount != 1:
                return None  # another worker claimed it between our read and our write
            delivery = _delivery(
                row, status=DeliveryStatus.SENDING, lease_expires_at=now + lease, claim_token=token
            )
            if row["has_attempts"]:
                delivery.attempts = _attempts(runner(connection), delivery_id)
            other_sent = delivery.is_guest_message and bool(row["other_credential_sent"])
        unresolved = None
        if row["status"] == DeliveryStatus.UNKNOWN:
            unresolved = next(
                (a for a in reversed(delivery.attempts) if a.outcome == AttemptOutcome.UNKNOWN),
                None,
            )
        return Claimed(delivery, unresolved, other_sent)

    def renew_leases(self, tokens: Sequence[str], lease: timedelta) -> set[int]:
        """The heartbeat: renew for `lease` from now every delivery still held under one of
        `tokens`. Returns the ids renewed (a claim taken back is not among them)."""
        if not tokens:
            return set()
        now = utcnow()
        with self._connection(one_statement=True) as connection:
            renewed = connection.execute(
                _RENEW, {"b_tokens": list(tokens), "b_lease": now + lease, "b_now": now}
            )
            return set(renewed.scalars())

    def release_delivery(
        self,
        claim: Claimed,
        status: DeliveryStatus,
        reason: str,
        *,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Give a claimed delivery back (pending, unknown) or end it unsent (failed: its
        follow-up is owed from now). False, and nothing recorded, if the claim was lost."""
        now = utcnow()
        tell = self.status_webhooks and status == DeliveryStatus.FAILED
        with self._connection(one_statement=not tell) as connection:
            released = connection.execute(
                _RELEASE,
                {"b_delivery_id": claim.delivery.id, "b_token": claim.token, "b_status": status,
                 "b_reason": reason, "b_next": next_attempt_at, "b_now": now,
                 "b_follow_up": now if status == DeliveryStatus.FAILED else None},
            )  # fmt: skip
            if released.rowcount != 1:
                return False
            if tell:
                owe_delivery(connection, claim.delivery.id, now)
            return True

    def begin_attempt(
        self,
        claim: Claimed,
        provider: str,
        message_fingerprint: str | None,
        lease: timedelta,
        destination: Destination | None = None,
    ) -> InFlight | None:
        """Record that a provider call is about to be made (committed before it is), renewing
        the claim for `lease` from now, in the statement that checks the claim is still this
        holder's. None, and nothing recorded, when it is not: the caller must not call."""
        now = utcnow()
        params = {
            "b_delivery_id": claim.delivery.id, "b_token": claim.token, "b_now": now,
            "b_lease": now + lease, "b_provider": provider,
            "b_message_fingerprint": message_fingerprint,
            "b_destination_masked": destination.masked if destination else None,
            "b_destination_hash": destination.hash if destination else None,
        }  # fmt: skip
        if self._postgres:
            attempt_id = self._alone(_FENCE_AND_BEGIN, params).scalar()
        else:
            with self._connection() as connection:
                # SQLite: one writer at a time, and the fence is this transaction's first write.
                fenced = connection.execute(_FENCE, params).scalar()
                attempt_id = (
                    None if fenced is None else connection.execute(_BEGIN, params).scalar_one()
                )
        if attempt_id is None:
            return None
        return InFlight(int(attempt_id), claim.delivery.id, now, claim.token)

    def finish_attempt(self, attempt: InFlight, end: AttemptEnd) -> Finished:
        """Record how a provider call ended and move its delivery on, in one transaction,
        fenced by the claim: LOST, and nothing recorded, if the claim was taken back."""
        now = utcnow()
        params: dict[str, Any] = {
            "b_id": attempt.id,
            "b_outcome": end.outcome,
            "b_duration_ms": int((now - attempt.started_at).total_seconds() * 1000),
            "b_delivery_id": attempt.delivery_id,
            "b_token": attempt.token,
            "b_status": end.status,
            "b_provider_message_id": end.provider_message_id,
            "b_error_code": end.error_code,
            "b_error_message": end.error_message,
            "b_next": end.next_attempt_at,
            "b_now": now,
            "b_sent_at": now if end.status in SENT_STATUSES else None,
            "b_follow_up": now if end.status == DeliveryStatus.FAILED else None,
        }
        with_deadline = end.retry_deadline is not None
        if with_deadline:
            params["b_deadline"] = end.retry_deadline
        # The PMS hears of a sent or failed key message in the same transaction.
        tell = self.status_webhooks and end.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED)
        if self._postgres and not tell:
            finished = self._alone(_FINISH_BOTH[with_deadline], params).first()
            if finished is None:
                return Finished.LOST
            return Finished.REPORTS_HELD if finished["held_reports"] else Finished.RECORDED
        with self._connection() as connection:
            if connection.dialect.name == "postgresql":
                row = connection.execute(_FINISH_BOTH[with_deadline], params).first()
                if row is None:
                    return Finished.LOST
                if tell:
                    owe_delivery(connection, attempt.delivery_id, now)
                return Finished.REPORTS_HELD if row.held_reports else Finished.RECORDED
            end_sending = _END_SENDING_WITH_DEADLINE if with_deadline else _END_SENDING
            if connection.execute(end_sending, params).rowcount != 1:
                return Finished.LOST
            connection.execute(_FINISH_ATTEMPT, params)
            if tell:
                owe_delivery(connection, attempt.delivery_id, now)
            held = (
                end.provider_message_id is not None
                and connection.execute(select(_HAS_HELD_REPORTS), params).scalar()
            )
            return Finished.REPORTS_HELD if held else Finished.RECORDED

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

    def settle_unknown(
        self, claim: Claimed, attempt_id: int, provider_message_id: str | None
    ) -> Finished:
        """Record what the provider said about a call whose answer was lost, fenced by the claim.

        Found: the attempt and its delivery are sent. Not found: the attempt is marked as never
        received, and the claimed delivery goes on to send again.
        """
        now = utcnow()
        params = {"b_id": attempt_id, "b_delivery_id": claim.delivery.id, "b_token": claim.token,
                  "b_provider_message_id": provider_message_id, "b_now": now}  # fmt: skip
        with self._connection() as connection:
            if provider_message_id is None:
                if connection.execute(_TOUCH, params).rowcount != 1:
                    return Finished.LOST
                connection.execute(_SETTLE_NOT_RECEIVED, params)
                return Finished.RECORDED
            ended = connection.execute(
                _END_SENDING,
                params | {"b_status": DeliveryStatus.SENT, "b_error_code": None,
                          "b_error_message": None, "b_next": None, "b_sent_at": now,
                          "b_follow_up": None},
            )  # fmt: skip
            if ended.rowcount != 1:
                return Finished.LOST
            connection.execute(_SETTLE_FOUND, params)
            if self.status_webhooks:
                owe_delivery(connection, claim.delivery.id, now)
            held = connection.execute(select(_HAS_HELD_REPORTS), params).scalar()
            return Finished.REPORTS_HELD if held else Finished.RECORDED


def in_window(not_before: datetime | None, expires_at: datetime | None, now: datetime) -> bool:
    """Whether a delivery's window (app/delivery/window.py) lets it be sent at `now`."""
    return (not_before is None or not_before <= now) and (expires_at is None or now < expires_at)


def _delivery(row: Any, **changes: Any) -> Delivery:
    """A detached Delivery from a Core row (what the ORM would have loaded), with `changes`."""
    values = {column.key: row[column.key] for column in DELIVERIES.c}
    return Delivery(**(values | changes))


def claim_planned(
    run: Run, access_method_id: str, delivery_ids: Sequence[int], lease: timedelta
) -> tuple[list[Claimed], list[int] | None]:
    """Claim deliveries planned in this transaction (PostgreSQL only: the caller asks there),
    and list the access method's other pending deliveries in the same statement. That list
    is None when nothing was claimed: the caller reads it then."""
    if not delivery_ids:
        return [], None
    now = utcnow()
    # One token for the deliveries one task plans and sends: one holder, one heartbeat.
    rows = run(
        _CLAIM_PLANNED,
        {"b_ids": list(delivery_ids), "b_now": now, "b_lease": now + lease,
         "b_token": new_token(), "b_access_method_id": access_method_id},
    ).mappings()  # fmt: skip
    if not rows:
        return [], None
    claimed = sorted((_claimed(run, row) for row in rows), key=lambda c: c.delivery.id)
    return claimed, list(rows[0]["still_pending"] or ())


def _claimed(run: Run, row: Any) -> Claimed:
    """A pending delivery just claimed, from a row of _CLAIMED_COLUMNS."""
    delivery = _delivery(row)
    if row["has_attempts"]:
        delivery.attempts = _attempts(run, delivery.id)
    return Claimed(delivery, None, delivery.is_guest_message and bool(row["other_credential_sent"]))


def _attempts(run: Run, delivery_id: int) -> list[Attempt]:
    return [Attempt(**row) for row in run(_ATTEMPTS_OF, {"b_id": delivery_id}).mappings()]
