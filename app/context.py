"""What the domain works with: the ports, the ledger, and the settings it acts on as plain values.

`Context` is built once per process from Settings (`Context.from_settings`); a domain entry
point takes it, and passes on to its helpers only the parts they use. Nothing in it is the
environment: `Policy` holds the dozen values the domain reads, so no domain signature hides a
dependency on the whole configuration. Building a Context loads the SDKs (the adapters are
imported inside `from_settings`), so the web process imports this module for its types alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.errors import ConfigError
from app.ledger.leases import LeaseKeeper
from app.ledger.store import Ledger
from app.messages.rendering import Templates
from app.ports import (
    AccessGrant,
    AccessMethod,
    ActionAttempt,
    EmailSender,
    Encoder,
    Guest,
    Related,
    SeamEventSummary,
    SeamReader,
    SmsSender,
    Space,
    WhatsAppSender,
)
from app.settings import Channel, Settings, search_key_from
from app.settings.window import Window

if TYPE_CHECKING:
    from app.messages.live import LiveTemplates


@dataclass(frozen=True)
class Schedule:
    """What the delivery window is decided with: the configured window, and the templates'
    properties.toml for each property's time zone."""

    window: Window
    templates: Templates

    def zone(self, workspace_id: str | None, space_ids: Sequence[str]) -> ZoneInfo:
        return ZoneInfo(self.templates.timezone(workspace_id, space_ids))


@dataclass(frozen=True)
class Policy:
    """The settings the domain acts on, read once from Settings."""

    channels: tuple[Channel, ...]
    # How long a claim lasts unless its holder's heartbeat renews it, and how often it does.
    lease: timedelta
    heartbeat: timedelta
    # How long a delivery is retried, from its first failure, before it fails for good.
    retry_window: timedelta
    window: Window
    # Failed tries (other than outages) before an event is set aside (EVENT_MAX_TRIES).
    event_max_tries: int
    front_desk_email: str | None
    notify_on_delete: bool
    notify_times_changed: bool
    notify_card_ready: bool
    # The provider each channel's attempts are recorded under ("dry_run" without credentials).
    sms_provider: str
    email_provider: str
    whatsapp_provider: str = "dry_run"
    # Keyed hashing of credentials and destinations: None when neither CREDENTIAL_HASH_KEY nor
    # SEAM_WEBHOOK_SECRET is set (an error only once something needs it).
    _fingerprint_key: bytes | None = field(default=None, repr=False)
    # The guest's "resend my key" link (app/delivery/guest_links.py): where it points
    # (PUBLIC_BASE_URL; no link without it), how long it lasts at most, how many resends a
    # stay allows, and the key it is signed with (None: no key could be made).
    public_base_url: str | None = None
    guest_link_max_days: float = 30
    guest_link_max_resends: int = 3
    _guest_link_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        try:
            key: bytes | None = settings.fingerprint_key()
        except ConfigError:
            key = None
        try:
            link_key: bytes | None = settings.guest_link_key()
        except ConfigError:
            link_key = None
        return cls(
            channels=settings.delivery_channels,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
            heartbeat=timedelta(seconds=settings.delivery_heartbeat_seconds),
            retry_window=timedelta(seconds=settings.retry_window_seconds),
            window=settings.delivery_window,
            event_max_tries=settings.event_max_tries,
            front_desk_email=settings.front_desk_email,
            notify_on_delete=settings.notify_guest_on_delete,
            notify_times_changed=settings.notify_guest_on_times_changed,
            notify_card_ready=settings.notify_guest_card_ready,
            sms_provider="twilio" if settings.sms_enabled else "dry_run",
            email_provider="sendgrid" if settings.email_enabled else "dry_run",
            whatsapp_provider="twilio" if settings.whatsapp_enabled else "dry_run",
            _fingerprint_key=key,
            public_base_url=settings.public_base_url,
            guest_link_max_days=settings.guest_link_max_days,
            guest_link_max_resends=settings.guest_link_max_resends,
            _guest_link_key=link_key,
        )

    def fingerprint_key(self) -> bytes:
        """The key credentials are fingerprinted with (app.delivery.credentials)."""
        if self._fingerprint_key is None:
            raise ConfigError(
                "CREDENTIAL_HASH_KEY or SEAM_WEBHOOK_SECRET must be set to fingerprint credentials"
            )
        return self._fingerprint_key

    def guest_link_key(self) -> bytes:
        """The key guests' resend links are signed with (app.delivery.guest_links)."""
        if self._guest_link_key is None:
            raise ConfigError(
                "GUEST_LINK_SECRET, CREDENTIAL_HASH_KEY or SEAM_WEBHOOK_SECRET must be set "
                "to sign guests' resend links"
            )
        return self._guest_link_key

    def search_key(self) -> bytes:
        """The key destinations are hashed with for search (app.delivery.destinations)."""
        return search_key_from(self.fingerprint_key())

    def provider(self, channel: str) -> str:
        if channel == "whatsapp":
            return self.whatsapp_provider
        return self.sms_provider if channel == "sms" else self.email_provider


class SeamReaders:
    """A Seam reader per workspace (SEAM_WORKSPACES_FILE), each with its workspace's key.

    `of(workspace_id)` picks one; a workspace the file does not list is read with the default
    (SEAM_API_KEY, else the only listed workspace's). Used as a SeamReader itself it is that
    default, so a deployment of one workspace reads Seam exactly as before.
    """

    def __init__(
        self, default: SeamReader | None, workspaces: Mapping[str, SeamReader] | None = None
    ) -> None:
        self.workspaces: Mapping[str, SeamReader] = dict(workspaces or {})
        if default is None and len(self.workspaces) == 1:
            default = next(iter(self.workspaces.values()))
        self._default = default

    def of(self, workspace_id: str | None) -> SeamReader:
        """The reader holding `workspace_id`'s key."""
        reader = self.workspaces.get(workspace_id) if workspace_id else None
        if reader is not None:
            return reader
        if self._default is None:
            raise ConfigError(
                f"Seam workspace {workspace_id or '(none named)'} is not in SEAM_WORKSPACES_FILE "
                "and SEAM_API_KEY is not set: no key to read it with"
            )
        return self._default

    def only(self, workspace_id: str | None) -> SeamReaders:
        """These readers narrowed to one workspace's: every read goes to its key."""
        if not self.workspaces:
            return self
        return SeamReaders(self.of(workspace_id))

    def each(self) -> list[tuple[str | None, SeamReader]]:
        """(workspace id, reader) for every key: the default (None) first, then each listed
        workspace; for what covers every workspace (reconcile)."""
        readers: list[tuple[str | None, SeamReader]] = []
        if self._default is not None and self._default not in self.workspaces.values():
            readers.append((None, self._default))
        return readers + list(self.workspaces.items())

    # -- SeamReader, as the default workspace's ----------------------------------------------

    def get_access_method(self, access_method_id: str) -> AccessMethod:
        return self.of(None).get_access_method(access_method_id)

    def get_access_grant(self, access_grant_id: str) -> AccessGrant:
        return self.of(None).get_access_grant(access_grant_id)

    def get_guest(self, user_identity_id: str) -> Guest:
        return self.of(None).get_guest(user_identity_id)

    def get_spaces(self, access_method_id: str) -> list[Space]:
        return self.of(None).get_spaces(access_method_id)

    def get_related(self, access_method_id: str) -> Related:
        return self.of(None).get_related(access_method_id)

    def get_access_method_and_related(self, access_method_id: str) -> tuple[AccessMethod, Related]:
        return self.of(None).get_access_method_and_related(access_method_id)

    def list_events(self, since: datetime, event_types: Sequence[str]) -> list[SeamEventSummary]:
        return self.of(None).list_events(since, event_types)

    def list_encoders(self, acs_system_ids: Sequence[str] = ()) -> list[Encoder]:
        return self.of(None).list_encoders(acs_system_ids)

    def encode_access_method(
        self, access_method_id: str, acs_encoder_id: str, wait_seconds: float
    ) -> ActionAttempt:
        return self.of(None).encode_access_method(access_method_id, acs_encoder_id, wait_seconds)

    def get_action_attempt(self, action_attempt_id: str) -> ActionAttempt:
        return self.of(None).get_action_attempt(action_attempt_id)

    def assign_card(
        self, access_method_id: str, card_number: str, wait_seconds: float
    ) -> ActionAttempt:
        return self.of(None).assign_card(access_method_id, card_number, wait_seconds)

    def scan_to_assign(
        self, acs_encoder_id: str, user_identity_id: str, wait_seconds: float
    ) -> ActionAttempt:
        return self.of(None).scan_to_assign(acs_encoder_id, user_identity_id, wait_seconds)


@dataclass
class Context:
    """The ports and the ledger a domain entry point works with, and its policy."""

    ledger: Ledger
    seam: SeamReaders
    sms: SmsSender
    email: EmailSender
    templates: Templates
    policy: Policy
    whatsapp: WhatsAppSender
    _leases: LeaseKeeper | None = field(default=None, repr=False, compare=False)

    @property
    def leases(self) -> LeaseKeeper:
        """This process's heartbeat for the claims its sends hold (app/ledger/leases.py)."""
        if self._leases is None:
            self._leases = LeaseKeeper(self.ledger, self.policy.lease, self.policy.heartbeat)
        return self._leases

    def for_workspace(self, workspace_id: str | None) -> Context:
        """This context reading Seam with `workspace_id`'s key (SEAM_WORKSPACES_FILE)."""
        if not self.seam.workspaces:
            return self
        return replace(self, seam=self.seam.only(workspace_id))

    @property
    def schedule(self) -> Schedule:
        """The delivery window and where each property's time zone comes from."""
        return Schedule(self.policy.window, self.templates)

    @classmethod
    def from_settings(cls, settings: Settings, ledger: Ledger | None = None) -> Context:
        """The real adapters (or dry-run senders), the ledger and the live templates."""
        from app.adapters.build import email_sender, seam_readers, sms_sender, whatsapp_sender
        from app.messages.live import LiveTemplates

        templates: LiveTemplates = LiveTemplates.from_settings(settings)
        return cls(
            ledger=ledger
            or Ledger.from_url(
                settings.database_url,
                settings.database_pool_size,
                status_webhooks=settings.status_webhooks,
            ),
            seam=SeamReaders(*seam_readers(settings)),
            sms=sms_sender(settings),
            email=email_sender(settings),
            templates=templates,
            policy=Policy.from_settings(settings),
            whatsapp=whatsapp_sender(settings),
        )
