"""What the domain works with: the ports, the ledger, and the settings it acts on as plain values.

`Context` is built once per process from Settings (`Context.from_settings`); a domain entry
point takes it, and passes on to its helpers only the parts they use. Nothing in it is the
environment: `Policy` holds the dozen values the domain reads, so no domain signature hides a
dependency on the whole configuration. Building a Context loads the SDKs (the adapters are
imported inside `from_settings`), so the web process imports this module for its types alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.errors import ConfigError
from app.ledger.leases import LeaseKeeper
from app.ledger.store import Ledger
from app.messages.rendering import Templates
from app.ports import EmailSender, SeamReader, SmsSender
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
    front_desk_email: str | None
    notify_on_delete: bool
    notify_times_changed: bool
    notify_card_ready: bool
    # The provider each channel's attempts are recorded under ("dry_run" without credentials).
    sms_provider: str
    email_provider: str
    # Keyed hashing of credentials and destinations: None when neither CREDENTIAL_HASH_KEY nor
    # SEAM_WEBHOOK_SECRET is set (an error only once something needs it).
    _fingerprint_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        try:
            key: bytes | None = settings.fingerprint_key()
        except ConfigError:
            key = None
        return cls(
            channels=settings.delivery_channels,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
            heartbeat=timedelta(seconds=settings.delivery_heartbeat_seconds),
            retry_window=timedelta(seconds=settings.retry_window_seconds),
            window=settings.delivery_window,
            front_desk_email=settings.front_desk_email,
            notify_on_delete=settings.notify_guest_on_delete,
            notify_times_changed=settings.notify_guest_on_times_changed,
            notify_card_ready=settings.notify_guest_card_ready,
            sms_provider="twilio" if settings.sms_enabled else "dry_run",
            email_provider="sendgrid" if settings.email_enabled else "dry_run",
            _fingerprint_key=key,
        )

    def fingerprint_key(self) -> bytes:
        """The key credentials are fingerprinted with (app.delivery.credentials)."""
        if self._fingerprint_key is None:
            raise ConfigError(
                "CREDENTIAL_HASH_KEY or SEAM_WEBHOOK_SECRET must be set to fingerprint credentials"
            )
        return self._fingerprint_key

    def search_key(self) -> bytes:
        """The key destinations are hashed with for search (app.delivery.destinations)."""
        return search_key_from(self.fingerprint_key())

    def provider(self, channel: str) -> str:
        return self.sms_provider if channel == "sms" else self.email_provider


@dataclass
class Context:
    """The ports and the ledger a domain entry point works with, and its policy."""

    ledger: Ledger
    seam: SeamReader
    sms: SmsSender
    email: EmailSender
    templates: Templates
    policy: Policy
    _leases: LeaseKeeper | None = field(default=None, repr=False, compare=False)

    @property
    def leases(self) -> LeaseKeeper:
        """This process's heartbeat for the claims its sends hold (app/ledger/leases.py)."""
        if self._leases is None:
            self._leases = LeaseKeeper(self.ledger, self.policy.lease, self.policy.heartbeat)
        return self._leases

    @property
    def schedule(self) -> Schedule:
        """The delivery window and where each property's time zone comes from."""
        return Schedule(self.policy.window, self.templates)

    @classmethod
    def from_settings(cls, settings: Settings, ledger: Ledger | None = None) -> Context:
        """The real adapters (or dry-run senders), the ledger and the live templates."""
        from app.adapters.build import email_sender, seam_reader, sms_sender
        from app.messages.live import LiveTemplates

        templates: LiveTemplates = LiveTemplates.from_settings(settings)
        return cls(
            ledger=ledger or Ledger.from_url(settings.database_url, settings.database_pool_size),
            seam=seam_reader(settings),
            sms=sms_sender(settings),
            email=email_sender(settings),
            templates=templates,
            policy=Policy.from_settings(settings),
        )
