"""Provider status reports: recording them, and the forward-only moves they make.

A report (a Twilio status callback, one SendGrid event) is stored once per provider event id;
a duplicate changes nothing. It is applied to a delivery only when the provider's message id
it names is one of that delivery's (an attempt's, or the delivery's own): a signed callback
carrying our reference but another message's id moves nothing. It moves its delivery forward
only, through the state machine (app/ledger/delivery_states.py), in one conditional UPDATE, so
two reports racing each other cannot move it back:

    sending / unknown / sent  ->  delivered  ->  undelivered (final)

A late "sent" or "delivered" after "undelivered" is recorded and changes nothing.

A report can beat the worker's own record of the provider's answer (the delivery is still
`sending`, or `unknown` until the lost answer is found): it is stored *held* (`held_target`),
and applied when the worker records that same message id (finish_attempt, settle_unknown
say so: `apply_held_reports`). A held report whose message id never becomes the delivery's
is never applied.

Moving into `undelivered` makes the follow-up due (`follow_up_due_at`, set in the same
statement): the web hands it to a worker at once, and the sweeper hands it on again until a
worker has planned it (`follow_up_done`). A send that fails for good makes it due the same
way (app/ledger/sending.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.ledger.base import LedgerBase
from app.ledger.delivery_states import Actor, move
from app.ledger.models import AttemptOutcome, Delivery, DeliveryStatus, ProviderEvent, utcnow
from app.ledger.outbox import owe_delivery
from app.ledger.sending import ATTEMPTS, DELIVERIES

PROVIDER_EVENTS = cast(Table, ProviderEvent.__table__)

# Where a report may move a delivery, and from which statuses.
ADVANCE_FROM: dict[DeliveryStatus, tuple[DeliveryStatus, ...]] = {
    DeliveryStatus.SENT: (DeliveryStatus.UNKNOWN,),
    DeliveryStatus.DELIVERED: (
        DeliveryStatus.SENDING,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.SENT,
    ),
    DeliveryStatus.UNDELIVERED: (
        DeliveryStatus.SENDING,
        DeliveryStatus.UNKNOWN,
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
    ),
}

_INSERT = {
    "postgresql": postgresql.insert(PROVIDER_EVENTS)
    .on_conflict_do_nothing()
    .returning(PROVIDER_EVENTS.c.id),
    "sqlite": sqlite.insert(PROVIDER_EVENTS)
    .on_conflict_do_nothing()
    .returning(PROVIDER_EVENTS.c.id),
}
_BY_ID = select(DELIVERIES.c.id).where(DELIVERIES.c.id == bindparam("b_id"))
# The delivery one of whose attempts the provider's message id is recorded on (a delivery's
# own provider_message_id is always one of its attempts').
_BY_MESSAGE_ID = (
    select(ATTEMPTS.c.delivery_id)
    .where(ATTEMPTS.c.provider_message_id == bindparam("b_message_id"))
    .order_by(ATTEMPTS.c.id)
    .limit(1)
)
# Whether the delivery still waits for a provider's answer it may name the message by.
_AWAITING_ANSWER = select(ATTEMPTS.c.id).where(
    ATTEMPTS.c.delivery_id == bindparam("b_id"),
    ATTEMPTS.c.outcome.in_((AttemptOutcome.IN_FLIGHT, AttemptOutcome.UNKNOWN)),
)
_HELD_REPORTS = (
    select(PROVIDER_EVENTS.c.id, PROVIDER_EVENTS.c.held_target, PROVIDER_EVENTS.c.provider,
           PROVIDER_EVENTS.c.status, PROVIDER_EVENTS.c.error_code)
    .where(PROVIDER_EVENTS.c.delivery_id == bindparam("b_id"),
           PROVIDER_EVENTS.c.held_target.is_not(None),
           PROVIDER_EVENTS.c.provider_message_id == bindparam("b_message_id"))
    .order_by(PROVIDER_EVENTS.c.id)
)  # fmt: skip
_RELEASE_REPORT = (
    update(PROVIDER_EVENTS)
    .where(PROVIDER_EVENTS.c.id == bindparam("b_event_id"))
    .values(held_target=None)
)


class ReportOutcome(StrEnum):
    UNKNOWN_MESSAGE = "unknown_message"  # not a message of ours: answered, logged, not stored
    DUPLICATE = "duplicate"  # this provider event id is already recorded
    RECORDED = "recorded"  # stored; the delivery's status stays (not a step forward)
    HELD = "held"  # stored; applied once the worker records this message id
    ADVANCED = "advanced"  # stored, and the delivery moved forward
    UNDELIVERED = "undelivered"  # stored, the delivery is now undelivered: follow-up due


@dataclass(frozen=True)
class ProviderReport:
    """One status report, in the ledger's terms. `status` is the provider's own word."""

    provider: str
    provider_event_id: str
    status: str
    # Our reference carried by the message (callback URL, custom_args), when present.
    delivery_id: int | None
    provider_message_id: str | None = None
    error_code: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Reported:
    outcome: ReportOutcome
    delivery_id: int | None


class ProviderEventStore(LedgerBase):
    def record_report(
        self,
        report: ProviderReport,
        target: DeliveryStatus | None,
        error_message: str | None = None,
    ) -> Reported:
        """Store a report once and, when its message is the delivery's and `target` is a step
        forward, move its delivery there (see the module docstring for held reports).

        `error_message` (no PII) is kept on the delivery when it becomes undelivered.
        """
        now = utcnow()
        with self._connection() as connection:
            delivery_id, matched = _find_delivery(connection, report)
            if delivery_id is None:
                return Reported(ReportOutcome.UNKNOWN_MESSAGE, None)
            inserted = connection.execute(
                _INSERT[connection.dialect.name],
                {
                    "delivery_id": delivery_id,
                    "provider": report.provider,
                    "provider_event_id": report.provider_event_id,
                    "status": report.status,
                    "error_code": report.error_code,
                    "occurred_at": report.occurred_at,
                    "received_at": now,
                    "provider_message_id": report.provider_message_id,
                    "held_target": None if matched or target is None else target.value,
                },
            ).scalar()
            if inserted is None:
                return Reported(ReportOutcome.DUPLICATE, delivery_id)
            if not matched:
                return Reported(ReportOutcome.HELD, delivery_id)
            if target is None or not _advance(
                connection, delivery_id, target, report.error_code or report.status,
                report.provider_message_id, error_message, now,
            ):  # fmt: skip
                return Reported(ReportOutcome.RECORDED, delivery_id)
            if self.status_webhooks:
                owe_delivery(connection, delivery_id, now)
        if target == DeliveryStatus.UNDELIVERED:
            return Reported(ReportOutcome.UNDELIVERED, delivery_id)
        return Reported(ReportOutcome.ADVANCED, delivery_id)

    def apply_held_reports(self, delivery_id: int, provider_message_id: str) -> bool:
        """Apply the reports held for `provider_message_id`, now that the worker recorded it as
        this delivery's. Returns whether the delivery became undelivered (follow-up due)."""
        now = utcnow()
        undelivered = False
        with self._connection() as connection:
            held = connection.execute(
                _HELD_REPORTS, {"b_id": delivery_id, "b_message_id": provider_message_id}
            ).all()
            for report in held:
                connection.execute(_RELEASE_REPORT, {"b_event_id": report.id})
                target = DeliveryStatus(report.held_target)
                reason = None
                if target == DeliveryStatus.UNDELIVERED:
                    code = f" (code {report.error_code})" if report.error_code else ""
                    reason = (
                        f"{report.provider} reported it {report.status} after accepting it{code}"
                    )
                moved = _advance(
                    connection, delivery_id, target, report.error_code or report.status,
                    provider_message_id, reason, now,
                )  # fmt: skip
                if moved and self.status_webhooks:
                    owe_delivery(connection, delivery_id, now)
                undelivered = undelivered or (moved and target == DeliveryStatus.UNDELIVERED)
        return undelivered

    def provider_events(self, delivery_id: int) -> list[ProviderEvent]:
        """A delivery's status reports, in the order they arrived (for its timeline)."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(ProviderEvent)
                    .where(ProviderEvent.delivery_id == delivery_id)
                    .order_by(ProviderEvent.received_at, ProviderEvent.id)
                )
            )

    def follow_ups_due_ids(self, now: datetime, waited_since: datetime, limit: int) -> list[int]:
        """Failed or undelivered deliveries whose follow-up (fallback, front-desk alert) is
        still owed, was due before `waited_since` and was not handed on since."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.status.in_((DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)),
                        Delivery.follow_up_due_at.is_not(None),
                        Delivery.follow_up_due_at <= waited_since,
                        or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < waited_since),
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )

    def follow_up_done(self, delivery_id: int) -> None:
        """A worker has planned what a failed or undelivered delivery calls for: not owed any
        more."""
        with self._connection() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id == delivery_id,
                    DELIVERIES.c.status.in_((DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)),
                )
                .values(follow_up_due_at=None, updated_at=utcnow())
            )


def _find_delivery(connection: Connection, report: ProviderReport) -> tuple[int | None, bool]:
    """The delivery a report is about, and whether its message id is that delivery's.

    By our reference first, if the message id is that delivery's; else whichever delivery
    holds the message id; else the referenced delivery, held, while it still waits for the
    provider's answer. Otherwise the report is about no message of ours."""
    message_id = report.provider_message_id
    owner: int | None = None
    if message_id:
        owner = connection.execute(_BY_MESSAGE_ID, {"b_message_id": message_id}).scalar()
    if owner is not None:
        return owner, True
    if report.delivery_id is None or not message_id:
        return None, False
    referenced: int | None = connection.execute(_BY_ID, {"b_id": report.delivery_id}).scalar()
    if referenced is None:
        return None, False
    awaiting = connection.execute(_AWAITING_ANSWER, {"b_id": referenced}).first()
    return (referenced, False) if awaiting is not None else (None, False)


_UNDELIVERED_VALUES: dict[str, Any] = {
    "error_code": bindparam("b_error_code"),
    "error_message": bindparam("b_reason"),
    # The follow-up is due now, and is being handed on now.
    "follow_up_due_at": bindparam("b_now"),
    "enqueued_at": bindparam("b_now"),
}
_ADVANCE = {
    target: move(
        Actor.PROVIDER, ADVANCE_FROM[target], target,
        DELIVERIES.c.id == bindparam("b_id"),
        updated_at=bindparam("b_now"), lease_expires_at=None, claim_token=None,
        provider_message_id=func.coalesce(
            DELIVERIES.c.provider_message_id, bindparam("b_message_id")
        ),
        **(_UNDELIVERED_VALUES if target == DeliveryStatus.UNDELIVERED
           else {"next_attempt_at": None}),
    )
    for target in ADVANCE_FROM
}  # fmt: skip


def _advance(
    connection: Connection,
    delivery_id: int,
    target: DeliveryStatus,
    error_code: str,
    provider_message_id: str | None,
    error_message: str | None,
    now: datetime,
) -> bool:
    params = {"b_id": delivery_id, "b_now": now, "b_message_id": provider_message_id,
              "b_error_code": error_code, "b_reason": error_message}  # fmt: skip
    return bool(connection.execute(_ADVANCE[target], params).rowcount)
