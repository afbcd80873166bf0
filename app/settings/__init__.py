"""The one place the environment is read.

`load_settings()` builds a `Settings` from the environment; nothing else in keycourier calls
`os.environ`. Secrets are `SecretStr` so that a settings object printed by accident shows stars.
A missing or malformed value raises `ConfigError` whose message is one line naming the variable.

The values some settings parse into live beside it: the delivery window (`window`), language
codes (`locales`) and the Seam workspaces of SEAM_WORKSPACES_FILE (`workspaces`).

May import: only errors. Settings is a foundation: every package may import it, so it imports
no other package of app.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.errors import ConfigError
from app.settings.locales import normalize_locale
from app.settings.window import (
    DURATION_HINT,
    QUIET_HOURS_HINT,
    LeadTime,
    QuietHours,
    Window,
    parse_lead_time,
    parse_quiet_hours,
)
from app.settings.workspaces import SeamWorkspace, is_svix_secret, read_workspaces

Channel = Literal["sms", "email", "whatsapp"]
# The default of DELIVERY_CHANNELS: WhatsApp needs content templates (properties.toml) first.
ALL_CHANNELS: tuple[Channel, ...] = ("sms", "email")
# The channels that reach a guest's phone number: one message of a key goes on the first of
# them a hotel lists, the next stands by as its fallback (app/delivery/channels.py).
PHONE_CHANNELS: tuple[Channel, ...] = ("whatsapp", "sms")

DEFAULT_DATABASE_URL = "sqlite:///var/keycourier.sqlite3"
DEFAULT_EMBEDDED_BROKER_URL = "sqla+sqlite:///var/broker.sqlite3"
TWILIO_STATUS_PATH = "/webhooks/twilio/status"

# What each setting is for, in the words of the error a newcomer sees when it is wrong.
HINTS: dict[str, str] = {
    "SEAM_API_KEY": "the API key of your Seam workspace (seam_...)",
    "SEAM_WEBHOOK_SECRET": "the signing secret Seam shows for your webhook (whsec_...)",
    "SEAM_WORKSPACES_FILE": "a TOML file listing the Seam workspaces (see README, Hotel groups)",
    "DATABASE_URL": "a SQLAlchemy URL such as postgresql://user@host/db or sqlite:///path",
    "REDIS_URL": "a Redis URL such as redis://localhost:6379/0",
    "DELIVERY_CHANNELS": "a comma-separated list of: sms, email, whatsapp",
    "TWILIO_WHATSAPP_FROM": "a WhatsApp sender of your Twilio account: +E.164 (or whatsapp:+...) "
    "or a Messaging Service SID (MG...)",
    "PORT": "the TCP port the web process listens on",
    "TIMEZONE": "an IANA time zone such as Europe/Paris",
    "DEFAULT_LOCALE": "a language code with a folder in every message, such as en or fr",
    "LOG_FORMAT": "json or console",
    "WORKER_METRICS_PORT": "a free TCP port for the worker's /metrics",
    "PUBLIC_BASE_URL": "the public https:// address of the web process, such as "
    "https://keys.hotel.example",
    "SENDGRID_WEBHOOK_PUBLIC_KEY": "the Event Webhook verification key SendGrid shows "
    "(base64, from MFkw...)",
    "DELIVERY_LEAD_TIME": DURATION_HINT,
    "QUIET_HOURS": QUIET_HOURS_HINT,
    "OPS_USERS": "comma-separated name:hash entries made by `keycourier ops-user NAME`",
    "OPS_SESSION_SECRET": "a long random string that signs the console's session cookie",
    "STATUS_WEBHOOK_URL": "the http(s):// address of the PMS endpoint that takes keycourier's "
    "status webhooks",
    "STATUS_WEBHOOK_SECRET": "a Standard Webhooks signing secret (whsec_<base64>)",
    "GUEST_LINK_SECRET": "a long random string that signs the guests' resend links",
}


class Settings(BaseSettings):
    """keycourier's configuration, one field per environment variable (DESIGN.md section 3)."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", env_ignore_empty=True, frozen=True
    )

    seam_api_key: SecretStr | None = None
    seam_endpoint: str | None = None
    seam_webhook_secret: SecretStr | None = None
    # Several Seam workspaces (a hotel group): a TOML file naming, per workspace, the variables
    # that hold its API key and webhook secret (app/settings/workspaces.py).
    seam_workspaces_file: Path | None = None

    redis_url: str | None = None
    # false: a rediss:// broker's certificate is not verified (Heroku Redis's is self-signed).
    redis_tls_verify: bool = True
    database_url: str = DEFAULT_DATABASE_URL

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = None
    # The WhatsApp sender guests see (a hotel's whatsapp_from in properties.toml wins): a
    # number registered as a WhatsApp sender in Twilio (+E.164), or a Messaging Service SID.
    twilio_whatsapp_from: str | None = None

    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str | None = None
    sendgrid_base_url: str | None = None

    front_desk_email: str | None = None
    # Tell a guest whose credential was already delivered when Seam deletes the access method.
    notify_guest_on_delete: bool = False
    # Tell a guest who already holds their code or mobile key that their stay's times moved.
    notify_guest_on_times_changed: bool = True
    # Tell a guest their plastic key card is encoded and waiting at the front desk.
    notify_guest_card_ready: bool = True
    templates_dir: Path = Path("templates")
    port: int = Field(default=8000, ge=1, le=65535)
    # The web server's limits (app/web/limits.py): a request head's size, how long a client may
    # take to send a head (and again its body), how long an idle connection is kept, and how
    # many connections one web process holds.
    web_max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=1024 * 1024)
    web_read_timeout_seconds: float = Field(default=10, gt=0, le=300)
    web_keepalive_seconds: int = Field(default=5, ge=1, le=3600)
    web_max_connections: int = Field(default=1000, ge=10, le=100_000)

    delivery_channels: Annotated[tuple[Channel, ...], NoDecode] = ALL_CHANNELS
    timezone: str = "UTC"
    # The language of a message for a workspace or space properties.toml does not map, and
    # the folder every other language falls back to.
    default_locale: str = "en"
    # An SMS longer than this many segments fails `keycourier templates check`.
    sms_max_segments: int = Field(default=2, ge=1, le=10)
    # How often a process looks for edited templates (0: before every message).
    templates_reload_seconds: float = Field(default=2.0, ge=0)
    # Keys the fingerprint kept instead of a PIN. Falls back to one derived from the webhook
    # secret; set it explicitly in production so rotating the webhook secret changes nothing.
    credential_hash_key: SecretStr | None = None
    # Where the dry-run channels write what they would have sent (the demo reads it).
    dry_run_outbox: Path | None = None
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Connections each process keeps to the database; a worker needs one per thread.
    database_pool_size: int = Field(default=10, ge=1, le=500)
    # Worker processes `keycourier worker` runs (each with its threads); unset, one per core
    # the machine, dyno or pod lets it use (app/ops/cores.py).
    worker_processes: int | None = Field(default=None, ge=1, le=64)
    # How long a transient failure is retried before the delivery fails (and falls back).
    retry_window_seconds: float = Field(default=30 * 60, gt=0)
    # Failed tries at processing an event, other than Seam, the ledger or the broker being
    # unreachable (a worker that died while processing it is one), before it is set aside
    # (poisoned) with its reason and an alert.
    event_max_tries: int = Field(default=8, ge=1, le=1000)
    # How long a worker's claim on a delivery lasts unless renewed; past it, the sweeper takes
    # the delivery back (a dead worker's send is picked up within lease + sweep interval). A
    # worker's start at an event has the same lease: past it, its try counts as failed.
    delivery_lease_seconds: float = Field(default=15, gt=0)
    # How often a worker renews the leases of the deliveries it holds (its heartbeat): well
    # inside the lease, so a slow but living worker keeps what it holds.
    delivery_heartbeat_seconds: float = Field(default=5, gt=0)
    # How often beat runs the sweeper.
    sweep_interval_seconds: float = Field(default=10, gt=0)
    reconcile_interval_seconds: float = Field(default=15 * 60, gt=0)
    reconcile_lookback_hours: float = Field(default=24, gt=0)
    log_level: str = "INFO"
    # Diagnosis only: when set, the web process runs its event loop in asyncio's debug mode
    # (which slows it) and logs every callback that held the loop longer than this many ms.
    slow_callback_ms: float | None = Field(default=None, gt=0)
    # json: one JSON object per line (log platforms); console: key=value text for a terminal.
    log_format: Literal["json", "console"] = "json"
    # Optional error reporting to Sentry; events are scrubbed of PII before they leave.
    sentry_dsn: SecretStr | None = None
    sentry_environment: str | None = None
    # When set, the web process's /metrics asks for `Authorization: Bearer <token>` (a public
    # Heroku app would otherwise show its counters to anyone).
    metrics_token: SecretStr | None = None
    # The port a worker serves /metrics on (Prometheus); unset, the worker serves none.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The file a worker touches on every heartbeat; `keycourier worker-health` reads its age.
    # Unset: one per instance (see `heartbeat_file`), never one for the whole machine.
    worker_heartbeat_file: Path | None = None
    # Delivery status from the providers (issue 7). The public https:// address of the web
    # process: SMS ask Twilio for status callbacks under it (none without it), and Twilio's
    # signatures are checked against it.
    public_base_url: str | None = None
    # SendGrid's Event Webhook verification key (Mail Settings > Event Webhook > Signature
    # Verification: the base64 ECDSA public key). Without it, the event webhook answers 403.
    sendgrid_webhook_public_key: str | None = None
    # How old a signed SendGrid event batch may be (its timestamp header) before it is refused.
    sendgrid_webhook_tolerance_seconds: float = Field(default=600, gt=0)
    # The delivery window (app/delivery/window.py). A guest's credential goes no earlier than this
    # before their access starts ("48h", "2d", ISO "P2D"); unset: as soon as it is issued.
    delivery_lead_time: Annotated[LeadTime | None, NoDecode] = None
    # Local times ("22:00-07:00", the property's time zone) when a guest message waits.
    quiet_hours: Annotated[QuietHours | None, NoDecode] = None
    # The ops console (/ops) and its JSON API (/api): see app/console/__init__.py.
    # Comma-separated name:hash entries; hashes are made by `keycourier ops-user NAME`.
    ops_users: SecretStr | None = None
    # Signs the console's session cookie; changing it signs everyone out.
    ops_session_secret: SecretStr | None = None
    ops_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # A console session unused this long is over (it lasts OPS_SESSION_HOURS at most).
    ops_session_idle_minutes: float = Field(default=30, gt=0, le=24 * 60 * 30)
    # Failed sign-ins for one name before it is locked out, and for how long.
    ops_lockout_failures: int = Field(default=5, ge=1, le=100)
    ops_lockout_minutes: float = Field(default=15, gt=0)
    # Failed sign-ins from one client address (any names) before it is locked out as long.
    ops_lockout_address_failures: int = Field(default=20, ge=1, le=10_000)
    # Password checks (scrypt, 32 MiB each) one web process runs at once, and how many more
    # sign-ins may wait for one; beyond that a sign-in is answered 503 with Retry-After.
    ops_sign_in_concurrency: int = Field(default=2, ge=1, le=32)
    ops_sign_in_queue: int = Field(default=8, ge=0, le=1000)
    # Comma-separated bearer tokens other hotel systems present to /api (name:token or token).
    api_tokens: SecretStr | None = None
    # SEAM_WORKSPACES_FILE's workspaces, read by load_settings with the environment it was given.
    _workspaces: tuple[SeamWorkspace, ...] | None = PrivateAttr(default=None)
    # Roles and scopes (app/console/access.py): a TOML file of who may do what, and whose
    # guests they see; unset, every console user and API token is an admin of everything.
    access_file: Path | None = None
    # Status webhooks to the hotel's PMS (app/outbound): delivery.sent, delivery.delivered,
    # delivery.failed, card.encoded, key.revoked, signed the Standard Webhooks way with the
    # secret (whsec_<base64>). Unset URL: none are recorded or sent.
    status_webhook_url: str | None = None
    status_webhook_secret: SecretStr | None = None
    # Tries per webhook before it is recorded as failed for good; the first retry waits
    # STATUS_WEBHOOK_RETRY_SECONDS, each next one three times longer (at most 6 hours).
    status_webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    status_webhook_retry_seconds: float = Field(default=10, gt=0, le=3600)
    # How often beat hands the webhooks owed (new ones, retries due) to the workers.
    status_webhook_poll_seconds: float = Field(default=5, gt=0, le=3600)
    # The guest's own "resend my key" link (app/delivery/guest_links.py, app/guest/): a hotel
    # turns it on in properties.toml (guest_resend_link = true); the link is under
    # PUBLIC_BASE_URL. Its key: GUEST_LINK_SECRET, else derived from the fingerprint key.
    guest_link_secret: SecretStr | None = None
    # How many times one guest may have their key sent again by the link, per stay.
    guest_link_max_resends: int = Field(default=3, ge=1, le=50)
    # A link works until the stay ends, and never longer than this many days after it was sent.
    guest_link_max_days: float = Field(default=30, gt=0, le=366)
    # Requests to the link's page one client address may make in GUEST_LINK_ADDRESS_MINUTES.
    guest_link_address_limit: int = Field(default=30, ge=1, le=10_000)
    guest_link_address_minutes: float = Field(default=10, gt=0, le=24 * 60)

    @model_validator(mode="before")
    @classmethod
    def _unverified_redis_tls(cls, data: Any) -> Any:
        """With REDIS_TLS_VERIFY=false, the URL says so itself, to redis-py and Celery alike."""
        if not isinstance(data, dict):
            return data
        verify = str(data.get("redis_tls_verify", "true")).strip().lower()
        url = data.get("redis_url")
        if (
            verify in ("false", "0", "no", "off")
            and isinstance(url, str)
            and url.startswith("rediss://")
            and "ssl_cert_reqs=" not in url
        ):
            data = {**data, "redis_url": f"{url}{'&' if '?' in url else '?'}ssl_cert_reqs=none"}
        return data

    @model_validator(mode="after")
    def _heartbeat_inside_the_lease(self) -> Settings:
        if self.delivery_heartbeat_seconds * 2 > self.delivery_lease_seconds:
            raise ValueError(
                "DELIVERY_HEARTBEAT_SECONDS must be at most half of DELIVERY_LEASE_SECONDS, "
                "or a living worker's claim could run out between two heartbeats"
            )
        if self.provider_timeout_seconds >= self.delivery_lease_seconds:
            raise ValueError(
                "PROVIDER_TIMEOUT_SECONDS must be less than DELIVERY_LEASE_SECONDS: a provider "
                "call must end inside the lease it was made under, before anyone may take over"
            )
        return self

    @model_validator(mode="after")
    def _status_webhook_signed(self) -> Settings:
        if self.status_webhook_url is not None and self.status_webhook_secret is None:
            raise ValueError(
                "STATUS_WEBHOOK_SECRET must be set with STATUS_WEBHOOK_URL: the PMS checks "
                "every status webhook's signature with it"
            )
        return self

    @field_validator("status_webhook_url")
    @classmethod
    def _status_webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("is not an absolute http(s):// URL")
        return value

    @field_validator("status_webhook_secret")
    @classmethod
    def _status_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_svix_secret(value.get_secret_value()):
            raise ValueError("is not a Standard Webhooks signing secret (expected whsec_<base64>)")
        return value

    @field_validator("seam_api_key")
    @classmethod
    def _seam_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("seam_"):
            raise ValueError("does not look like a Seam API key (expected seam_...)")
        return value

    @field_validator("seam_webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if not is_svix_secret(value.get_secret_value()):
            raise ValueError("is not a Svix signing secret (expected whsec_<base64>)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Heroku hands out postgres://, which SQLAlchemy 2 no longer accepts as a dialect name.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        if not value.startswith(("sqlite:", "postgresql+")):
            raise ValueError("is not a PostgreSQL or SQLite URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("is not a redis:// URL")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
            raise ValueError("is not an absolute http(s):// URL")
        return value.rstrip("/")

    @field_validator("guest_link_secret")
    @classmethod
    def _guest_link_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("is too short: use 32 characters or more")
        return value

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _sendgrid_public_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            key = load_der_public_key(base64.b64decode(value.strip(), validate=True))
        except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
            key = None
        if not isinstance(key, EllipticCurvePublicKey):
            raise ValueError("is not a base64 ECDSA public key")
        return value.strip()

    @field_validator("delivery_channels", mode="before")
    @classmethod
    def _channels(cls, value: object) -> object:
        if isinstance(value, str):
            names = tuple(part.strip().lower() for part in value.split(",") if part.strip())
            if not names:
                raise ValueError("names no channel")
            return names
        return value

    @field_validator("twilio_whatsapp_from")
    @classmethod
    def _whatsapp_from(cls, value: str | None) -> str | None:
        if value is None:
            return None
        sender = value.strip().removeprefix("whatsapp:")
        if not re.fullmatch(r"\+[1-9][0-9]{6,14}|MG[0-9a-fA-F]{32}", sender):
            raise ValueError("is not a +E.164 number or a Messaging Service SID")
        return sender

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone") from None
        return value

    @field_validator("default_locale")
    @classmethod
    def _default_locale(cls, value: str) -> str:
        try:
            return normalize_locale(value)
        except ValueError:
            raise ValueError("is not a language code Babel knows") from None

    @field_validator("delivery_lead_time", mode="before")
    @classmethod
    def _lead_time(cls, value: object) -> object:
        return parse_lead_time(value) if isinstance(value, str) else value

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet_hours(cls, value: object) -> object:
        return parse_quiet_hours(value) if isinstance(value, str) else value

    # -- derived views -------------------------------------------------------------------

    @property
    def delivery_window(self) -> Window:
        return Window(self.delivery_lead_time, self.quiet_hours)

    @property
    def broker_url(self) -> str:
        return self.redis_url or DEFAULT_EMBEDDED_BROKER_URL

    @property
    def embedded_broker(self) -> bool:
        return self.redis_url is None

    @property
    def heartbeat_file(self) -> Path:
        """WORKER_HEARTBEAT_FILE, else a file in the temporary folder named after this
        instance's ledger and broker (without credentials; a SQLite file by its absolute path):
        a worker of another checkout or instance on the same machine touches another file, so
        `keycourier worker-health` answers only for this one's workers."""
        if self.worker_heartbeat_file is not None:
            return self.worker_heartbeat_file
        instance = "\n".join(_location(url) for url in (self.database_url, self.broker_url))
        digest = hashlib.sha256(instance.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"keycourier-worker-{digest}.heartbeat"

    @property
    def twilio_status_callback_url(self) -> str | None:
        """Where Twilio reports an SMS's status; None (no callbacks) without PUBLIC_BASE_URL."""
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}{TWILIO_STATUS_PATH}"

    @property
    def status_webhooks(self) -> bool:
        """Status webhooks are owed to the PMS (recorded in the ledger's outbox, then sent)."""
        return self.status_webhook_url is not None

    @property
    def sms_enabled(self) -> bool:
        """Twilio is configured; otherwise SMS runs dry."""
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        )

    @property
    def whatsapp_enabled(self) -> bool:
        """Twilio's credentials are set: WhatsApp is sent through it (the sender may come from
        a hotel's whatsapp_from); otherwise WhatsApp runs dry."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def email_enabled(self) -> bool:
        """SendGrid is configured; otherwise email runs dry."""
        return bool(self.sendgrid_api_key and self.sendgrid_from_email)

    def fingerprint_key(self) -> bytes:
        if self.credential_hash_key is not None:
            return self.credential_hash_key.get_secret_value().encode()
        if self.seam_webhook_secret is None:
            raise ConfigError(
                "CREDENTIAL_HASH_KEY or SEAM_WEBHOOK_SECRET must be set to fingerprint credentials"
            )
        secret = self.seam_webhook_secret.get_secret_value().encode()
        return hmac.new(secret, b"keycourier credential fingerprint", hashlib.sha256).digest()

    def guest_link_key(self) -> bytes:
        """The key guest links are signed with: GUEST_LINK_SECRET, else one derived from the
        fingerprint key (so changing either makes every link sent so far stop working)."""
        if self.guest_link_secret is not None:
            return self.guest_link_secret.get_secret_value().encode()
        return guest_link_key_from(self.fingerprint_key())

    @property
    def seam_workspaces(self) -> tuple[SeamWorkspace, ...]:
        """The workspaces SEAM_WORKSPACES_FILE lists (none without it)."""
        if self._workspaces is None:
            self._workspaces = self._read_workspaces(os.environ)
        return self._workspaces

    def _read_workspaces(self, environ: Mapping[str, str]) -> tuple[SeamWorkspace, ...]:
        if self.seam_workspaces_file is None:
            return ()
        return read_workspaces(self.seam_workspaces_file, environ)

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of these variables that is unset.

        With SEAM_WORKSPACES_FILE, SEAM_API_KEY and SEAM_WEBHOOK_SECRET may be unset: what is
        required then is every listed workspace's key (or secret), in its own variable."""
        for name in names:
            if name == "SEAM_API_KEY" and self.seam_workspaces:
                for workspace in self.seam_workspaces:
                    workspace.require_api_key()
                continue
            if name == "SEAM_WEBHOOK_SECRET" and self.seam_workspaces:
                for workspace in self.seam_workspaces:
                    workspace.require_webhook_secret()
                continue
            if getattr(self, name.lower()) is None:
                raise ConfigError(f"{name} is not set: it must be {HINTS.get(name, 'set')}")


def _location(url: str) -> str:
    """Where a database or broker URL points, without user, password or query: a SQLite
    file by its absolute path (the defaults are relative to the working directory)."""
    parts = urlsplit(url)
    if "sqlite" in parts.scheme:
        path = url.split(":///", 1)[-1].split("?", 1)[0]
        return f"sqlite:{Path(path).resolve() if path and path != ':memory:' else path}"
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or ''}{parts.path}"


def load_settings(
    environ: dict[str, str] | None = None, *, require: Iterable[str] = ()
) -> Settings:
    """Build Settings from `environ` (default: the process environment)."""
    try:
        settings = Settings() if environ is None else _settings_from_mapping(environ)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    settings._workspaces = settings._read_workspaces(os.environ if environ is None else environ)
    if (
        settings.seam_workspaces
        and settings.seam_webhook_secret is None
        and settings.credential_hash_key is None
    ):
        # The fingerprint key cannot come from one workspace's secret: rotating it, or listing
        # the workspaces in another order, would make every code already sent look new.
        raise ConfigError(
            "CREDENTIAL_HASH_KEY is not set: with SEAM_WORKSPACES_FILE and no "
            "SEAM_WEBHOOK_SECRET it must be set (a long random string that keys the "
            "fingerprints the ledger keeps instead of PINs)"
        )
    settings.require(*require)
    return settings


def _settings_from_mapping(environ: dict[str, str]) -> Settings:
    fields = Settings.model_fields
    values = {
        key.lower(): value
        for key, value in environ.items()
        if key.lower() in fields and value != ""
    }
    return Settings.model_validate(values)


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]).upper() if error["loc"] else "configuration"
    reason = str(error["msg"]).removeprefix("Value error, ")
    hint = HINTS.get(name)
    # A validator that already says what it expected is not followed by the general hint.
    suffix = f" (expected {hint})" if hint and "(expected" not in reason else ""
    # Never echo the offending value: it may be a secret.
    return f"{name} is invalid: {reason}{suffix}"


def search_key_from(fingerprint_key: bytes) -> bytes:
    """The key destinations are hashed with for search, derived from the credential
    fingerprint key (Settings.fingerprint_key)."""
    return hmac.new(fingerprint_key, b"keycourier destination search", "sha256").digest()


def guest_link_key_from(fingerprint_key: bytes) -> bytes:
    """The key guest links are signed with when GUEST_LINK_SECRET is unset, derived from the
    credential fingerprint key (Settings.fingerprint_key)."""
    return hmac.new(fingerprint_key, b"keycourier guest link", "sha256").digest()
