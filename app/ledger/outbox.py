"""The status webhooks owed to the hotel's PMS: an outbox in the ledger, and every try at one.

A state change the PMS is told of (a guest's key message sent, delivered or failed; a card
encoded; a key revoked) writes its webhook here **in the same transaction** as the change, by
INSERT ... SELECT from the row that changed (`owe_delivery`, `owe_card`, `owe_revoked`), so
neither can be recorded without the other. The row is a snapshot of what the payload says
(ids, statuses, times, the masked recipient: never a PIN or an Instant Key URL, which the ledger
does not hold). A unique key (`dedupe_key`: the event type and the row it is about) makes a
second write of the same change a no-op.

Only a ledger built with `status_webhooks=True` (STATUS_WEBHOOK_URL set) writes them.

Sending (app/outbound) goes: `due_status_webhook_ids` (the relay, from beat) -> a task per id ->
`claim_status_webhook` (a lease, so two workers never send one at once) -> the POST ->
`finish_status_webhook` (the attempt recorded; delivered, or the next try's time, or failed
for good after the last).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Connection,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app.ledger.base import LedgerBase
from app.ledger.models import (
    Base,
    Delivery,
    DeliveryStatus,
    Event,
    FrontDeskFlag,
    utcnow,
)
from app.ledger.scope import Scope, in_scope
from app.messages.kinds import CREDENTIAL_KINDS


class HookEvent(StrEnum):
    """What a status webhook says happened (its `type`)."""

    DELIVERY_SENT = "delivery.sent"
    DELIVERY_DELIVERED = "delivery.delivered"
    DELIVERY_FAILED = "delivery.failed"
    CARD_ENCODED = "card.encoded"
    KEY_REVOKED = "key.revoked"


class HookState(StrEnum):
    PENDING = "pending"  # owed: sent when next_attempt_at comes (at once when new)
    DELIVERED = "delivered"  # the PMS answered 2xx
    FAILED = "failed"  # every try failed (STATUS_WEBHOOK_MAX_ATTEMPTS): given up, recorded


# The delivery statuses the PMS hears of, by the webhook each is.
DELIVERY_EVENTS = {
    DeliveryStatus.SENT: HookEvent.DELIVERY_SENT,
    DeliveryStatus.DELIVERED: HookEvent.DELIVERY_DELIVERED,
    DeliveryStatus.FAILED: HookEvent.DELIVERY_FAILED,
    DeliveryStatus.UNDELIVERED: HookEvent.DELIVERY_FAILED,
}
REVOKING_EVENTS = ("access_method.revoked", "access_method.deleted")


class StatusWebhook(Base):
    """One webhook owed to the PMS, with a snapshot of what its payload says."""

    __tablename__ = "status_webhooks"
    __table_args__ = (Index("ix_status_webhooks_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The event type and the row it is about ("delivery.sent:delivery:42"): each change once.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("front_desk_flags.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    access_method_id: Mapped[str] = mapped_column(String(100), index=True)
    access_grant_id: Mapped[str | None] = mapped_column(String(100))
    workspace_id: Mapped[str | None] = mapped_column(String(100))
    space_ids: Mapped[str | None] = mapped_column(Text)
    reservation: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(10))
    # The delivery's status (or the Seam event's type, for key.revoked).
    status: Mapped[str | None] = mapped_column(String(40))
    recipient_masked: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(100))
    # Sending it.
    state: Mapped[str] = mapped_column(String(20), default=HookState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def message_id(self) -> str:
        """The Standard Webhooks `webhook-id`: the same on every try, so the PMS can drop a
        repeat; unique across ledgers (the row's creation time is in it)."""
        return f"msg_kc{self.id}_{int(self.created_at.timestamp() * 1_000_000):x}"

    @property
    def space_id_list(self) -> tuple[str, ...]:
        return tuple(s for s in (self.space_ids or "").split(",") if s)


class StatusWebhookAttempt(Base):
    """One POST of a status webhook: when, the answer's status code (none: no answer), why not."""

    __tablename__ = "status_webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("status_webhooks.id"), index=True)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None]


HOOKS = cast(Table, StatusWebhook.__table__)
HOOK_ATTEMPTS = cast(Table, StatusWebhookAttempt.__table__)
_D = cast(Table, Delivery.__table__)
_F = cast(Table, FrontDeskFlag.__table__)
_E = cast(Table, Event.__table__)
_GUEST_KEY_KINDS = [kind.value for kind in CREDENTIAL_KINDS]
_COLUMNS = (
    "dedupe_key", "event_type", "occurred_at", "delivery_id", "flag_id", "event_id",
    "access_method_id", "access_grant_id", "workspace_id", "space_ids", "reservation", "kind",
    "channel", "status", "recipient_masked", "error_code", "state", "attempts",
    "next_attempt_at", "created_at",
)  # fmt: skip


def _key(event_type: Any, what: str, row_id: Any) -> Any:
    return event_type + literal(f":{what}:") + sql_cast(row_id, String)


def _now() -> Any:
    return bindparam("b_now", type_=HOOKS.c.occurred_at.type)


def _tail() -> tuple[Any, ...]:
    return (literal(HookState.PENDING.value, String), literal(0, Integer), _now(), _now())


# A delivery's status as the webhook it is.
_DELIVERY_EVENT = case(
    {status.value: event.value for status, event in DELIVERY_EVENTS.items()},
    value=_D.c.status,
)
_DELIVERY_SELECT = select(
    _key(_DELIVERY_EVENT, "delivery", _D.c.id), _DELIVERY_EVENT, _now(),
    _D.c.id, literal(None, Integer), literal(None, Integer),
    _D.c.access_method_id, _D.c.access_grant_id, _D.c.workspace_id, _D.c.space_ids,
    _D.c.reservation, _D.c.kind, _D.c.channel, _D.c.status, _D.c.destination_masked,
    _D.c.error_code, *_tail(),
).where(
    _D.c.id == bindparam("b_delivery_id"),
    _D.c.kind.in_(_GUEST_KEY_KINDS),
    _D.c.status.in_([status.value for status in DELIVERY_EVENTS]),
)  # fmt: skip


def _latest_delivery(column: Any, access_method_id: Any) -> Any:
    """The access method's latest delivery's `column` (where its guest's stay is)."""
    return (
        select(column)
        .where(_D.c.access_method_id == access_method_id)
        .order_by(_D.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _card_select() -> Any:
    event_type = literal(HookEvent.CARD_ENCODED.value, String)
    return select(
        _key(event_type, "flag", _F.c.id), event_type, _now(),
        literal(None, Integer), _F.c.id, literal(None, Integer),
        _F.c.access_method_id, _F.c.access_grant_id,
        _latest_delivery(_D.c.workspace_id, _F.c.access_method_id),
        _latest_delivery(_D.c.space_ids, _F.c.access_method_id),
        _latest_delivery(_D.c.reservation, _F.c.access_method_id),
        literal(None, String), literal(None, String), literal("encoded", String),
        literal(None, String), literal(None, String), *_tail(),
    ).where(_F.c.id.in_(bindparam("b_flag_ids", expanding=True)))  # fmt: skip


def _revoked_select() -> Any:
    event_type = literal(HookEvent.KEY_REVOKED.value, String)
    return select(
        _key(event_type, "event", _E.c.id), event_type, _now(),
        literal(None, Integer), literal(None, Integer), _E.c.id,
        _E.c.access_method_id, _latest_delivery(_D.c.access_grant_id, _E.c.access_method_id),
        _E.c.workspace_id, _latest_delivery(_D.c.space_ids, _E.c.access_method_id),
        _latest_delivery(_D.c.reservation, _E.c.access_method_id),
        literal(None, String), literal(None, String), _E.c.event_type,
        literal(None, String), literal(None, String), *_tail(),
    ).where(
        _E.c.id == bindparam("b_event_id"),
        _E.c.event_type.in_(REVOKING_EVENTS),
        _E.c.access_method_id.is_not(None),
    )  # fmt: skip


def _insert(connection: Connection, query: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(HOOKS)
        .from_select(list(_COLUMNS), query)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )


def owe_delivery(connection: Connection, delivery_id: int, now: datetime) -> None:
    """In the caller's transaction: the webhook of the delivery's new status, if it is a guest's
    key message and a status the PMS hears of (sent, delivered, failed, undelivered)."""
    connection.execute(
        _insert(connection, _DELIVERY_SELECT), {"b_delivery_id": delivery_id, "b_now": now}
    )


def owe_cards(connection: Connection, flag_ids: Sequence[int], now: datetime) -> None:
    """In the caller's transaction: card.encoded for each flag just closed by an encode."""
    if flag_ids:
        connection.execute(
            _insert(connection, _card_select()), {"b_flag_ids": list(flag_ids), "b_now": now}
        )


def owe_revoked(connection: Connection, event_id: int, now: datetime) -> None:
    """In the caller's transaction: key.revoked for an access_method.revoked or .deleted event
    just processed."""
    connection.execute(
        _insert(connection, _revoked_select()), {"b_event_id": event_id, "b_now": now}
    )


@dataclass(frozen=True)
class HookTry:
    """How one POST of a webhook ended."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def hook_in_scope(scope: Scope) -> Any:
    """A webhook is seen where its access method's deliveries are (as a card flag is)."""
    if scope.everywhere:
        return literal(True)
    return (
        select(Delivery.id)
        .where(Delivery.access_method_id == StatusWebhook.access_method_id, in_scope(scope))
        .exists()
    )


class OutboxStore(LedgerBase):
    """Sending the status webhooks: the relay's query, the claim, each try's record."""

    def due_status_webhook_ids(
        self, now: datetime, waited_since: datetime, limit: int
    ) -> list[int]:
        """Webhooks owed now that nobody holds and that were not handed on since
        `waited_since`; marked as handed on now."""
        with self._connection() as connection:
            ids = list(
                connection.execute(
                    select(HOOKS.c.id)
                    .where(
                        HOOKS.c.state == HookState.PENDING,
                        or_(HOOKS.c.next_attempt_at.is_(None), HOOKS.c.next_attempt_at <= now),
                        or_(HOOKS.c.lease_expires_at.is_(None), HOOKS.c.lease_expires_at <= now),
                        or_(HOOKS.c.enqueued_at.is_(None), HOOKS.c.enqueued_at <= waited_since),
                    )
                    .order_by(HOOKS.c.id)
                    .limit(limit)
                ).scalars()
            )
            if ids:
                connection.execute(update(HOOKS).where(HOOKS.c.id.in_(ids)).values(enqueued_at=now))
        return ids

    def claim_status_webhook(self, webhook_id: int, lease: timedelta) -> StatusWebhook | None:
        """Take a due webhook for `lease` (its POST must end inside it); None if it is not due,
        done, or held by another worker."""
        now = utcnow()
        with self._connection() as connection:
            taken = connection.execute(
                update(HOOKS)
                .where(
                    HOOKS.c.id == webhook_id,
                    HOOKS.c.state == HookState.PENDING,
                    or_(HOOKS.c.next_attempt_at.is_(None), HOOKS.c.next_attempt_at <= now),
                    or_(HOOKS.c.lease_expires_at.is_(None), HOOKS.c.lease_expires_at <= now),
                )
                .values(lease_expires_at=now + lease)
            )
            if taken.rowcount != 1:
                return None
            row = connection.execute(select(HOOKS).where(HOOKS.c.id == webhook_id)).mappings()
            return StatusWebhook(**row.one())

    def finish_status_webhook(
        self, hook: StatusWebhook, result: HookTry, *, retry_at: datetime | None
    ) -> HookState:
        """Record a try: delivered on a 2xx; else pending until `retry_at`, or failed for good
        when there is none. Returns the state it is left in."""
        now = utcnow()
        if result.delivered:
            state = HookState.DELIVERED
        else:
            state = HookState.PENDING if retry_at is not None else HookState.FAILED
        with self._connection() as connection:
            connection.execute(
                HOOK_ATTEMPTS.insert().values(
                    webhook_id=hook.id, attempted_at=now, status_code=result.status_code,
                    error=result.error, duration_ms=result.duration_ms,
                )
            )  # fmt: skip
            connection.execute(
                update(HOOKS)
                .where(HOOKS.c.id == hook.id)
                .values(
                    state=state, attempts=HOOKS.c.attempts + 1, last_attempt_at=now,
                    last_status_code=result.status_code, last_error=result.error,
                    next_attempt_at=retry_at if state == HookState.PENDING else None,
                    lease_expires_at=None, enqueued_at=None,
                    delivered_at=now if state == HookState.DELIVERED else None,
                )
            )  # fmt: skip
        return state

    def recent_status_webhooks(
        self, scope: Scope, limit: int = 100
    ) -> list[tuple[StatusWebhook, list[StatusWebhookAttempt]]]:
        """The latest webhooks `scope` sees, newest first, each with its tries (oldest first)."""
        with self._transaction() as session:
            hooks = list(
                session.scalars(
                    select(StatusWebhook)
                    .where(hook_in_scope(scope))
                    .order_by(StatusWebhook.id.desc())
                    .limit(limit)
                )
            )
            tries: dict[int, list[StatusWebhookAttempt]] = {hook.id: [] for hook in hooks}
            if hooks:
                for attempt in session.scalars(
                    select(StatusWebhookAttempt)
                    .where(StatusWebhookAttempt.webhook_id.in_(list(tries)))
                    .order_by(StatusWebhookAttempt.id)
                ):
                    tries[attempt.webhook_id].append(attempt)
        return [(hook, tries[hook.id]) for hook in hooks]

    def status_webhook(self, webhook_id: int) -> StatusWebhook | None:
        with self._transaction() as session:
            return session.get(StatusWebhook, webhook_id)


__all__ = [
    "DELIVERY_EVENTS",
    "HookEvent",
    "HookState",
    "HookTry",
    "OutboxStore",
    "StatusWebhook",
    "StatusWebhookAttempt",
    "owe_cards",
    "owe_delivery",
    "owe_revoked",
]
