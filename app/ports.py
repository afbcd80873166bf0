"""The ports keycourier's domain talks through, and the plain types that cross them.

Adapters in `app/adapters/` implement these over the Seam, Twilio and SendGrid SDKs (or run
dry); no SDK object crosses a port. Fields that hold a credential are left out of `repr`, so a
stray log of one of these objects cannot leak a PIN or an Instant Key URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

AccessMode = Literal["code", "card", "mobile_key", "cloud_key"]


@dataclass(frozen=True)
class AccessMethod:
    access_method_id: str
    workspace_id: str
    mode: AccessMode
    display_name: str
    is_issued: bool
    is_encoding_required: bool
    is_ready_for_encoding: bool
    code: str | None = field(default=None, repr=False)
    instant_key_url: str | None = field(default=None, repr=False)
    # Card assignment (systems with pre-registered cards): a card credential must be assigned
    # before the card can be issued (access_methods/assign_card, or scanned at an encoder).
    is_assignment_required: bool = False
    is_ready_for_assignment: bool = False
    # Seam's codes, as Seam spells them (unknown ones kept): `errors` (e.g. failed_to_issue),
    # `warnings` (being_deleted, updating_access_times, pulled_backup_access_code,
    # delay_in_issuing) and `pending_mutations` (provisioning_access, revoking_access,
    # updating_access_times). Codes only: Seam's messages stay behind in the adapter.
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    pending_mutations: tuple[str, ...] = ()

    @property
    def credential(self) -> str | None:
        """What the guest needs in hand: the PIN for a code, the link for a mobile key."""
        if self.mode == "code":
            return self.code
        if self.mode == "mobile_key":
            return self.instant_key_url
        return None


@dataclass(frozen=True)
class AccessGrant:
    access_grant_id: str
    user_identity_id: str | None
    display_name: str
    starts_at: datetime | None
    ends_at: datetime | None
    space_ids: tuple[str, ...]
    access_grant_key: str | None = None
    reservation_key: str | None = None
    access_method_ids: tuple[str, ...] = ()
    workspace_id: str | None = None
    # Seam's errors on the grant (e.g. cannot_create_requested_access_methods), codes only, and
    # what could not be created, for the front desk (app/events/grants.py).
    errors: tuple[str, ...] = ()
    # The devices that did not receive a requested access method, and the requested access
    # methods Seam created nothing for (their display names), per cannot_create_... error.
    missing_device_ids: tuple[str, ...] = ()
    missing_access_methods: tuple[str, ...] = ()
    # Why (Seam's message of the cannot_create_requested_access_methods error, masked).
    error_message: str | None = None


@dataclass(frozen=True)
class Guest:
    user_identity_id: str
    full_name: str | None
    phone_number: str | None = field(repr=False)
    email_address: str | None = field(repr=False)
    # Set when the phone number Seam gave cannot be one (app/delivery/phones.py): why, with no
    # digit of it; phone_number is then None.
    phone_problem: str | None = None


@dataclass(frozen=True)
class Recipient:
    """A guest of an access method: one of its grants, and the grant's user identity (None when
    the grant names none)."""

    grant: AccessGrant
    guest: Guest | None

    @property
    def name(self) -> str:
        return (self.guest.full_name if self.guest else None) or self.grant.display_name


@dataclass(frozen=True)
class Space:
    space_id: str
    name: str


@dataclass(frozen=True)
class SeamEventSummary:
    """One event from Seam's events/list: just what keycourier records."""

    event_id: str
    event_type: str
    workspace_id: str | None
    access_method_id: str | None
    access_grant_ids: tuple[str, ...]
    occurred_at: str | None


@dataclass(frozen=True)
class Related:
    """An access method's spaces and access grants (by id), read in one call."""

    spaces: list[Space]
    grants: dict[str, AccessGrant]


@dataclass(frozen=True)
class EncoderError:
    """An error Seam reports on an encoder resource (e.g. `acs_encoder_removed`)."""

    error_code: str
    message: str


@dataclass(frozen=True)
class Encoder:
    """A card encoder at a front desk (Seam's acs_encoder).

    Seam's encoder resource carries no connectivity flag: `is_online` is false when Seam
    reports an error on it (it was removed from the access system), true otherwise. An
    encoder that is merely unplugged shows only when an encode is tried
    (the action attempt's `encoder_not_online` error).
    """

    acs_encoder_id: str
    acs_system_id: str | None
    display_name: str
    errors: tuple[EncoderError, ...] = ()

    @property
    def is_online(self) -> bool:
        return not self.errors


ActionStatus = Literal["pending", "success", "error"]


@dataclass(frozen=True)
class ActionAttempt:
    """Seam's record of an action on hardware (here: encoding a card), as far as it has got.

    `error_type` is Seam's (e.g. `encoder_not_online`, `no_credential_on_encoder`,
    `incompatible_card_format`, `credential_cannot_be_reissued`, `action_attempt_expired`).
    """

    action_attempt_id: str
    action_type: str
    status: ActionStatus
    error_type: str | None = None
    error_message: str | None = None


class SeamReader(Protocol):
    """Reads the current state of an access method and the people and places around it, and
    makes the one change keycourier asks of Seam: encoding a plastic card at an encoder."""

    def get_access_method(self, access_method_id: str) -> AccessMethod: ...

    def get_access_grant(self, access_grant_id: str) -> AccessGrant: ...

    def get_guest(self, user_identity_id: str) -> Guest: ...

    def get_spaces(self, access_method_id: str) -> list[Space]: ...

    def get_related(self, access_method_id: str) -> Related: ...

    def get_access_method_and_related(self, access_method_id: str) -> tuple[AccessMethod, Related]:
        """get_access_method and get_related, in one call to Seam where it can be."""
        ...

    def list_events(
        self, since: datetime, event_types: Sequence[str]
    ) -> list[SeamEventSummary]: ...

    def list_encoders(self, acs_system_ids: Sequence[str] = ()) -> list[Encoder]:
        """The workspace's encoders (only those of `acs_system_ids` when given)."""
        ...

    def encode_access_method(
        self, access_method_id: str, acs_encoder_id: str, wait_seconds: float
    ) -> ActionAttempt:
        """Ask Seam to encode the card; wait up to `wait_seconds` for the attempt to finish.

        Returns the attempt as it stands then (pending, success or error): an attempt's error
        is an answer, not an exception. Raises ProviderError when Seam refuses the request
        itself (NotFound for an unknown access method or encoder) or cannot be reached.
        """
        ...

    def get_action_attempt(self, action_attempt_id: str) -> ActionAttempt: ...

    def assign_card(
        self, access_method_id: str, card_number: str, wait_seconds: float
    ) -> ActionAttempt:
        """Assign a pre-registered card, by its number, to a card access method that needs
        one (access_methods/assign_card); waits as encode_access_method does."""
        ...

    def scan_to_assign(
        self, acs_encoder_id: str, user_identity_id: str, wait_seconds: float
    ) -> ActionAttempt:
        """Scan the card on the encoder and assign it to the guest's user identity
        (acs/encoders/scan_to_assign_credential); waits as encode_access_method does."""
        ...


@dataclass(frozen=True)
class Sms:
    to: str = field(repr=False)
    body: str = field(repr=False)
    # An opaque id of ours, for the provider's records and the dry-run outbox.
    reference: str = ""
    # The hotel's own sender (properties.toml): a phone number (E.164) or a Twilio Messaging
    # Service SID (MG...); None: the configured TWILIO_FROM_NUMBER / _MESSAGING_SERVICE_SID.
    sender: str | None = None


# The custom argument (SendGrid's `custom_args`) an email's `reference` travels in, and comes
# back in on SendGrid's event webhook. Here, not in the adapter: the web process reads it
# without loading the SendGrid SDK.
EMAIL_REFERENCE_ARG = "keycourier_ref"


@dataclass(frozen=True)
class Email:
    to: str = field(repr=False)
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)
    reference: str = ""
    # The hotel's own sender address and display name (properties.toml); None: the configured
    # SENDGRID_FROM_EMAIL (and no name, or the adapter's).
    sender: str | None = None
    sender_name: str | None = None


@dataclass(frozen=True)
class WhatsApp:
    """A business-initiated WhatsApp message: an approved content template (Twilio's Content
    API) and the values of its placeholders. The credential travels only in `variables`."""

    # The guest's number, E.164, without the `whatsapp:` prefix (the adapter adds it).
    to: str = field(repr=False)
    content_sid: str
    # ContentVariables: placeholder ("1", "2", ...) -> its text.
    variables: Mapping[str, str] = field(repr=False)
    reference: str = ""
    # The hotel's WhatsApp sender (properties.toml): +E.164 or a Messaging Service SID (MG...);
    # None: TWILIO_WHATSAPP_FROM.
    sender: str | None = None


@dataclass(frozen=True)
class Sent:
    """What a provider said when it accepted a message."""

    provider: str
    provider_message_id: str | None
    dry_run: bool = False


@dataclass(frozen=True)
class ProviderMessage:
    """A message the provider says it holds, for telling whether an unanswered send went out."""

    provider_message_id: str
    body: str = field(repr=False)
    created_at: datetime | None = None


class SmsSender(Protocol):
    def send_sms(self, message: Sms) -> Sent: ...

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage] | None:
        """Messages to `to` created since `since`; None when the provider cannot be asked."""
        ...


class WhatsAppSender(Protocol):
    def send_whatsapp(self, message: WhatsApp) -> Sent: ...

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage] | None:
        """WhatsApp messages to `to` (E.164) created since `since`, each with the text the
        provider rendered from its template; None when the provider cannot be asked."""
        ...


class EmailSender(Protocol):
    def send_email(self, message: Email) -> Sent: ...

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage] | None:
        """As SmsSender.recent_messages."""
        ...


class Work(StrEnum):
    """The kinds of work the queue carries; each is one task that takes one id."""

    PROCESS_EVENT = "process_event"
    SEND_DELIVERY = "send_delivery"
    AFTER_UNDELIVERED = "after_undelivered"
    # A status webhook owed to the PMS (app/outbound): its id in the ledger's outbox.
    SEND_STATUS_WEBHOOK = "send_status_webhook"


@dataclass(frozen=True)
class Queued:
    """Work a domain call leaves for the queue: what to do, to which id, and when. Domain
    functions return these instead of calling back into the queue; the caller hands them on."""

    work: Work
    id: int
    countdown: float | None = None


def sends(delivery_ids: Sequence[int]) -> list[Queued]:
    """Send each of these deliveries."""
    return [Queued(Work.SEND_DELIVERY, delivery_id) for delivery_id in delivery_ids]
