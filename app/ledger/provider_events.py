"""Provider status reports: recording them, and the forward-only moves they make.

A report (a Twilio status callback, one SendGrid event) is stored once per provider event id;
a duplicate changes nothing. It moves its delivery forward only, in one conditional UPDATE,
so two reports racing each other cannot move it back:

    sending / unknown / sent  ->  delivered  ->  undelivered (final)

A report of "sent" only settles an `unknown` delivery (the provider has it: no resend). A
late "sent" or "delivered" after "undelivered" is recorded and changes nothing. A delivery
still `sending` can be moved on: the callback can beat the worker's own record of the
provider's answer, and the worker's record then leaves the delivery as the callback left it.

Moving into `undelivered` marks the fallback as due (`next_attempt_at`, which means nothing
else for a delivery in that status): the web hands it to a worker at once, and the sweeper
hands it on again until a worker has planned it (`fallback_planned`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Connection, Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.ledger.base import LedgerBase
from app.ledger.models import Delivery, DeliveryStatus, ProviderEvent, utcnow
from app.ledger.sending import DELIVERIES

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
_BY_MESSAGE_ID = (
    select(DELIVERIES.c.id)
    .where(DELIVERIES.c.provider_message_id == bindparam("b_message_id"))
    .order_by(DELIVERIES.c.id)
    .limit(1)
)


class ReportOutcome(StrEnum):
    UNKNOWN_MESSAGE = "unknown_message"  # not a message of ours: answered, logged, not stored
    DUPLICATE = "duplicate"  # this provider event id is already recorded
    RECORDED = "recorded"  # stored; the delivery's status stays (not a step forward)
    ADVANCED = "advanced"  # stored, and the delivery moved forward
    UNDELIVERED = "undelivered"  # stored, the delivery is now undelivered: fallback due


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
        """Store a report once and, when `target` is a step forward, move its delivery there.

        `error_message` (no PII) is kept on the delivery when it becomes undelivered.
        """
        now = utcnow()
        with self._connection() as connection:
            delivery_id = _find_delivery(connection, report)
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
                },
            ).scalar()
            if inserted is None:
                return Reported(ReportOutcome.DUPLICATE, delivery_id)
            if target is None or not _advance(
                connection, delivery_id, target, report, error_message, now
            ):
                return Reported(ReportOutcome.RECORDED, delivery_id)
        if target == DeliveryStatus.UNDELIVERED:
            return Reported(ReportOutcome.UNDELIVERED, delivery_id)
        return Reported(ReportOutcome.ADVANCED, delivery_id)

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

    def undelivered_due_ids(self, now: datetime, waited_since: datetime, limit: int) -> list[int]:
        """Undelivered deliveries whose fallback is due and was not handed on recently."""
        with self._transaction() as session:
            return list(
                session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.status == DeliveryStatus.UNDELIVERED,
                        Delivery.next_attempt_at.is_not(None),
                        Delivery.next_attempt_at <= now,
                        or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < waited_since),
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )

    def fallback_planned(self, delivery_id: int) -> None:
        """The worker has planned what an undelivered delivery calls for: not due any more."""
        with self._connection() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id == delivery_id,
                    DELIVERIES.c.status == DeliveryStatus.UNDELIVERED,
                )
                .values(next_attempt_at=None, updated_at=utcnow())
            )


def _find_delivery(connection: Connection, report: ProviderReport) -> int | None:
    if report.delivery_id is not None:
        found: int | None = connection.execute(_BY_ID, {"b_id": report.delivery_id}).scalar()
        if found is not None:
            return found
    if report.provider_message_id:
        return connection.execute(
            _BY_MESSAGE_ID, {"b_message_id": report.provider_message_id}
        ).scalar()
    return None


def _advance(
    connection: Connection,
    delivery_id: int,
    target: DeliveryStatus,
    report: ProviderReport,
    error_message: str | None,
    now: datetime,
) -> bool:
    values: dict[str, object] = {
        "status": target,
        "updated_at": now,
        "lease_expires_at": None,
        "provider_message_id": func.coalesce(
            DELIVERIES.c.provider_message_id, report.provider_message_id
        ),
    }
    if target == DeliveryStatus.UNDELIVERED:
        values |= {
            "error_code": report.error_code or report.status,
            "error_message": error_message,
            # The fallback is due now, and is being handed on now (see the module docstring).
            "next_attempt_at": now,
            "enqueued_at": now,
        }
    else:
        values["next_attempt_at"] = None
    result = connection.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status.in_(ADVANCE_FROM[target]))
        .values(**values)
    )
    return bool(result.rowcount)
