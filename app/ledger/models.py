"""The ledger's tables: the record of every event, delivery, attempt and front-desk flag.

The ledger, not the broker, is keycourier's source of truth. Unique keys make duplicates
impossible rather than unlikely: one event per `svix-id` and per Seam `event_id`; one delivery
per access method, kind, credential, channel and recipient; one open front-desk flag per access
method. A credential is kept only as a keyed fingerprint, never in clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app.messages.kinds import MessageKind

# The largest id an Integer primary key holds on every backend (PostgreSQL's `integer`): an id
# asked for from outside (a URL, a provider's reference) beyond it names nothing.
MAX_ROW_ID = 2**31 - 1
# A resend the front desk asked for (app/delivery/credentials.py RESEND_MARK), still on its way.
RESEND_ON_ITS_WAY = (
    "status IN ('pending', 'held', 'sending', 'unknown') "
    "AND credential_fingerprint LIKE '%~resend-%'"
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# A status, kind or outcome name: what one_of writes into a statement's text.
_NAME = re.compile(r"[a-z][a-z_]{0,63}")


def one_of(column: Any, names: Iterable[str]) -> ColumnElement[bool]:
    """`column IN ('a', 'b')` with the names written into the statement's text, for the
    fixed sets of statuses the hot statements test. `column.in_(names)` is an "expanding"
    parameter, which SQLAlchemy re-renders into the SQL on every execution (~40 us of CPU per
    statement: bench/RESULTS.md); these names are the ledger's own constants, never input."""
    values = sorted(set(names))
    for value in values:
        if not _NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a status name")
    return cast(
        "ColumnElement[bool]", column.in_([literal_column(f"'{value}'") for value in values])
    )


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EventStatus(StrEnum):
    RECEIVED = "received"  # recorded; not yet handed to the broker
    QUEUED = "queued"  # handed to the broker
    PROCESSED = "processed"  # the worker acted on it
    IGNORED = "ignored"  # a type keycourier does not act on
    REJECTED = "rejected"  # signed but unreadable
    FAILED = "failed"  # processing failed for good (see detail)
    # Set aside after EVENT_MAX_TRIES failed tries that were not an outage (see detail): listed
    # on the console's alerts, never handed out again.
    POISONED = "poisoned"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # planned, waiting for a worker
    SENDING = "sending"  # claimed by a worker until lease_expires_at; a call may be in flight
    UNKNOWN = "unknown"  # a provider call got no answer: find out whether it went, then resend
    SENT = "sent"  # the provider accepted it
    DRY_RUN = "dry_run"  # rendered and recorded; the channel has no credentials
    FAILED = "failed"  # permanent failure, recorded with the provider's code
    SUPERSEDED = "superseded"  # the credential changed before it went out
    SKIPPED = "skipped"  # nothing to send to (e.g. no front-desk address configured)
    EXPIRED = "expired"  # the guest's stay ended before it could go (app/delivery/window.py)
    # Seam revoked the access method while it re-programs it: wait for its issued/reissued.
    HELD = "held"
    # From the provider's status callbacks, after SENT: forward only.
    DELIVERED = "delivered"  # the provider reports it reached the phone or the mailbox
    UNDELIVERED = "undelivered"  # final: the provider gave up after accepting it; fallback planned


class AttemptOutcome(StrEnum):
    IN_FLIGHT = "in_flight"  # recorded before the provider is called
    UNKNOWN = "unknown"  # no answer: the provider may or may not have the message
    SENT = "sent"
    DRY_RUN = "dry_run"
    TRANSIENT_ERROR = "transient_error"
    PERMANENT_ERROR = "permanent_error"


class ProviderEventStatus(StrEnum):
    """The provider's own word for a message's fate, as its callback says it."""

    # Twilio status callbacks (MessageStatus)
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    # WhatsApp's blue ticks: the guest opened it (after delivered, or in its place)
    READ = "read"
    # SendGrid Event Webhook (event); "delivered" is shared with Twilio
    DEFERRED = "deferred"
    BOUNCE = "bounce"
    DROPPED = "dropped"


class FlagStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    svix_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    seam_event_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    event_type: Mapped[str | None] = mapped_column(String(100))
    workspace_id: Mapped[str | None] = mapped_column(String(100))
    access_method_id: Mapped[str | None] = mapped_column(String(100), index=True)
    access_grant_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_backup_code: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(20), default="webhook")
    status: Mapped[str] = mapped_column(String(20), default=EventStatus.RECEIVED)
    detail: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    # Failed tries at processing it (outages included: they set the backoff), and when to try
    # again.
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    # Of those, the tries that failed for another reason than an outage (an error, or a worker
    # that stopped while processing it): EVENT_MAX_TRIES of them set the event aside.
    failed_tries: Mapped[int] = mapped_column(default=0, server_default="0")
    # Of those, the tries whose worker died (killed, out of memory): such an event is processed
    # by one worker at a time among them, so a killer cannot take its neighbours down with it.
    lost_tries: Mapped[int] = mapped_column(default=0, server_default="0")
    # A worker's start at processing it (app/ledger/event_starts.py), committed before the work
    # and cleared when the try ends either way: its token, when it began, and until when its
    # worker's heartbeat keeps it. One still there with its lease run out is a worker that died.
    processing_token: Mapped[str | None] = mapped_column(String(40))
    processing_started_at: Mapped[datetime | None]
    processing_lease_until: Mapped[datetime | None]

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="event")

    __table_args__ = (Index("ix_events_status_queued", "status", "queued_at"),)


# A delivery's credential_fingerprint: the credential's keyed fingerprint, FINGERPRINT_LENGTH
# hex characters, or for a resend the front desk asked for that fingerprint + RESEND_MARK + the
# request's id. The ledger compares credentials on the first FINGERPRINT_LENGTH characters;
# app/delivery/credentials.py makes the fingerprints.
FINGERPRINT_LENGTH = 40
RESEND_MARK = "~resend-"


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint(
            "access_method_id",
            "kind",
            "credential_fingerprint",
            "channel",
            "recipient",
            name="uq_deliveries_one_per_credential_channel_recipient",
        ),
        Index("ix_deliveries_status_created", "status", "created_at"),
        # The sweeper's release and expiry queries (scheduled deliveries, app/delivery/window.py).
        Index("ix_deliveries_status_not_before", "status", "not_before"),
        # The sweeper's follow-up query (a failure's fallback or alert still owed).
        Index("ix_deliveries_status_follow_up", "status", "follow_up_due_at"),
        # At most one resend the front desk asked for on its way per key, guest and channel:
        # two requests at the same instant cannot both insert (app/ledger/deliveries.py).
        Index(
            "uq_deliveries_one_resend_on_its_way",
            "access_method_id",
            "kind",
            "channel",
            "recipient",
            unique=True,
            sqlite_where=text(RESEND_ON_ITS_WAY),
            postgresql_where=text(RESEND_ON_ITS_WAY),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    access_method_id: Mapped[str] = mapped_column(String(100), index=True)
    access_grant_id: Mapped[str | None] = mapped_column(String(100))
    user_identity_id: Mapped[str | None] = mapped_column(String(100))
    # Who the message is for, in the unique key: the guest's user identity for a guest's
    # message (an access method shared by two guests owes each their own), "" for a front-desk
    # message about the access method as a whole.
    recipient: Mapped[str] = mapped_column(String(100), default="", server_default="")
    guest_name: Mapped[str | None] = mapped_column(String(200))
    reservation: Mapped[str | None] = mapped_column(String(200))
    # A MessageKind's value (message_kind reads it back as one).
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    credential_fingerprint: Mapped[str] = mapped_column(String(100))
    destination_masked: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    # Retries: when a pending delivery is due again, and when trying stops.
    next_attempt_at: Mapped[datetime | None]
    retry_deadline: Mapped[datetime | None]
    # A worker's claim; past it, the sweeper takes the delivery back. The holder's heartbeat
    # renews it (app/ledger/leases.py).
    lease_expires_at: Mapped[datetime | None]
    # Who holds the claim: a random token each claim draws. Every write a holder makes is
    # fenced by it, so a holder whose claim was taken back records nothing and sends nothing.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # A failed or undelivered delivery's follow-up (the other channel, the front desk's alert)
    # is owed from this time until a worker has planned it; set in the same statement as the
    # failure, so a crash in between loses nothing (the sweeper hands it on).
    follow_up_due_at: Mapped[datetime | None]
    # Where the delivery was meant to go when it was planned; `destination_masked` is where its
    # latest attempt went (the guest's contact may change in Seam between the two).
    planned_destination_masked: Mapped[str | None] = mapped_column(String(200))
    # Last time it was handed to the broker (the sweeper re-queues what waits too long).
    enqueued_at: Mapped[datetime | None]
    # The delivery on another channel this one stands in for.
    fallback_for_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"))
    # The delivery window (app/delivery/window.py): not claimed before `not_before` (lead time,
    # quiet hours), and closed as expired, unsent, from `expires_at` (the grant's ends_at) on.
    not_before: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    # Keyed hash of the full destination, so the console can find a guest by phone or email
    # while the ledger keeps only the masked form (app/delivery/destinations.py).
    destination_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # The Seam workspace and spaces the stay is in: which hotel it is (properties.toml) and who
    # in the console may see it. `space_ids` is kept as ",id1,id2," (see space_list).
    workspace_id: Mapped[str | None] = mapped_column(String(100), index=True)
    space_ids: Mapped[str | None] = mapped_column(Text)

    event: Mapped[Event | None] = relationship(back_populates="deliveries")
    attempts: Mapped[list[Attempt]] = relationship(back_populates="delivery", order_by="Attempt.id")

    @property
    def message_kind(self) -> MessageKind:
        return MessageKind(self.kind)

    @property
    def is_guest_message(self) -> bool:
        return self.message_kind.is_for_guest

    @property
    def space_id_list(self) -> tuple[str, ...]:
        return tuple(s for s in (self.space_ids or "").split(",") if s)


def space_list(space_ids: Iterable[str]) -> str | None:
    """How a delivery keeps its space ids: ",id1,id2,", so that a query matches one whole
    (LIKE '%,id,%') on every backend; None for none. An id holding a comma is no Seam id."""
    kept = [space_id for space_id in space_ids if space_id and "," not in space_id]
    return f",{','.join(kept)}," if kept else None


class Attempt(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(20))
    # Keyed fingerprint of destination and body, to recognise this message in the
    # provider's list when its answer was lost.
    message_fingerprint: Mapped[str | None] = mapped_column(String(100))
    # Where this attempt went, read from Seam when it was made: masked, and the search hash.
    destination_masked: Mapped[str | None] = mapped_column(String(200))
    destination_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # Indexed: a provider's status report finds its message by it.
    provider_message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)

    delivery: Mapped[Delivery] = relationship(back_populates="attempts")


class FrontDeskFlag(Base):
    __tablename__ = "front_desk_flags"
    __table_args__ = (
        # At most one open flag per access method, however many events say "encode me".
        Index(
            "uq_front_desk_flags_open_per_access_method",
            "access_method_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    access_method_id: Mapped[str] = mapped_column(String(100))
    access_grant_id: Mapped[str | None] = mapped_column(String(100))
    guest_name: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10), default=FlagStatus.OPEN)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    opened_by_event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))


class ProviderEvent(Base):
    """One status report from Twilio or SendGrid about a message we sent.

    One row per report, whatever the provider's retries: SendGrid's `sg_event_id`, and for
    Twilio (which has no event id) `MessageSid:MessageStatus`. Reports about messages the
    ledger does not know are answered and logged, not stored.
    """

    __tablename__ = "provider_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id", name="uq_provider_events_provider_event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))  # "twilio" | "sendgrid"
    provider_event_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # a ProviderEventStatus
    error_code: Mapped[str | None] = mapped_column(String(100))
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The provider's id of the message reported on (Twilio's MessageSid, SendGrid's message id).
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    # A report that arrived before the worker recorded the provider's id for its message: the
    # status it would move the delivery to, applied once that id is recorded and matches.
    held_target: Mapped[str | None] = mapped_column(String(20))


class AuditEntry(Base):
    """One thing a person did in the ops console: who, what, on what, when. Never a secret."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)


class SignInFailures(Base):
    """Console sign-in attempts per name, and per client address, for the lockout: the key is a
    keyed hash of the name (or of the address), never the name. In the ledger so that every web
    process sees the same count.

    `failures` counts the attempt slots taken in the window that began at `first_failed_at`:
    a slot is taken (in one statement) before a password is checked and given back only when
    it matched, so however many guesses arrive at once, no more than the limit are checked."""

    __tablename__ = "ops_sign_in_failures"

    name_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    first_failed_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in console session. The cookie carries a random id; the ledger keeps only its
    SHA-256, so reading this table signs nobody in. Deleted at sign-out; ignored (and deleted)
    past its idle timeout or lifetime, or once the user's password hash changed
    (`password_tag` no longer matches)."""

    __tablename__ = "ops_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100))
    password_tag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class GuestLinkResends(Base):
    """How many times a guest had their key sent again through their own link (app/guest/),
    per stay: `stay_key` names the access grant (else the access method) and the guest. A slot
    is taken in one statement before Seam is asked and given back when nothing was sent, so
    requests at the same instant never take more than GUEST_LINK_MAX_RESENDS between them."""

    __tablename__ = "guest_link_resends"

    stay_key: Mapped[str] = mapped_column(String(210), primary_key=True)
    used: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
