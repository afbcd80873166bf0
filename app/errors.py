"""keycourier's exceptions, all in one tree.

    KeycourierError
    ├── ConfigError                 a setting is missing or malformed; start-up stops
    ├── TemplateError               a message template cannot be rendered (file and line)
    ├── PropertiesError*            templates/properties.toml cannot be used (line)
    ├── PreviewError*               a template preview cannot be made as asked
    ├── ConfigMapError*             the templates folder cannot become a Kubernetes ConfigMap
    ├── LedgerUnavailable           the database cannot be reached; the caller retries or 503s
    ├── LedgerNotReady              an operator's command finds no ledger, or one not migrated yet
    ├── LedgerRefused               the database refused a value (too long, a NUL): not retried
    ├── BrokerUnavailable           the broker cannot be reached; the caller retries or 503s
    ├── ProviderError               a call to Seam, Twilio or SendGrid failed
    │   ├── TransientProviderError  worth retrying: timeouts, connection errors, 429, 5xx
    │   │   └── UnknownOutcome      the request left but no answer came: it may have been sent
    │   └── PermanentProviderError  retrying cannot help: invalid number, unsubscribed, 4xx
    │       └── NotFound            the Seam resource no longer exists
    ├── NotSent                     an HTTP request that did not go out whole (adapters/kept_http)
    ├── NoAnswer                    one that went out whole, without a whole answer: it may have
    │                               been acted on (the adapters make it an UnknownOutcome)
    ├── CheckFailed                 doctor, register-webhook: a provider refused our credentials
    │                               or could not be reached
    ├── Unsendable                  a planned delivery must not go out now; `status` ends it
    ├── BodyTooLarge                a webhook's body is over its size limit (413)
    ├── SignInBusy                  every console password check and queue place is taken (503)
    ├── SlotRefused                 a sign-in attempt slot (per name or address) is full or locked
    └── StandinRefusal              a stand-in API (app/standins) refuses a request
    * also a ValueError, as they were before they joined the tree

    IllegalTransition (an AssertionError, outside the tree on purpose): a delivery status change
    the state machine (app/ledger/delivery_states.py) does not allow. A bug, never a condition
    to handle: no `except KeycourierError` retries it.

Third-party exceptions are translated at the adapter boundary (`raise Ours(...) from exc`),
and messages carry codes and ids only: never a PIN, an Instant Key URL, a secret or a token.
This module imports nothing of app, so every package may raise and catch these.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

S = TypeVar("S")
G = TypeVar("G")


class KeycourierError(Exception):
    """Base of every error keycourier raises on purpose."""


class ConfigError(KeycourierError):
    """A setting is missing or malformed. The message is one line naming the variable."""


class TemplateError(KeycourierError):
    """A template failed to load or render. `where` is `file:line` when known."""

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where


class PropertiesError(KeycourierError, ValueError):
    """templates/properties.toml cannot be used; `line` is where, when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


class PreviewError(KeycourierError, ValueError):
    """The preview cannot be made as asked: the reason is for the person at the terminal."""


class ConfigMapError(KeycourierError, ValueError):
    """The templates folder cannot be turned into a ConfigMap as it is."""


class LedgerUnavailable(KeycourierError):
    """The ledger database cannot be reached."""


class LedgerRefused(KeycourierError):
    """The database refused a value (longer than its column, a NUL byte...): the same write
    fails again. The message names the kind of refusal only, never the value."""


class BrokerUnavailable(KeycourierError):
    """The task broker cannot be reached."""


class ProviderError(KeycourierError):
    """A provider call failed. `code` is the provider's own error code, when it gave one."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}" + (f" (code {code})" if code else ""))
        self.provider = provider
        self.message = message
        self.code = code
        self.status = status
        self.retry_after = retry_after


class TransientProviderError(ProviderError):
    """Retrying later may succeed."""


class UnknownOutcome(TransientProviderError):
    """The request reached the provider but its answer did not reach us.

    The message may have been accepted: resolve that (ask the provider) before any resend.
    """


class PermanentProviderError(ProviderError):
    """Retrying cannot succeed; the failure is recorded and reported."""


class NotFound(PermanentProviderError):
    """The Seam resource asked for does not exist (any more)."""


class NotSent(KeycourierError):
    """Nothing the other side could act on went out: no connection, a refused TLS handshake,
    a request not written whole (app/adapters/kept_http.py). Safe to send again."""

    def __init__(self, message: str, *, timed_out: bool, connecting: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.connecting = connecting


class NoAnswer(KeycourierError):
    """The request went out whole and no whole answer came back (none in time, or one cut
    off): the other side may have acted on it (app/adapters/kept_http.py)."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class CheckFailed(KeycourierError):
    """A provider said no, or could not be reached. The message says which and why."""


class Unsendable(KeycourierError, Generic[S, G]):
    """The delivery can no longer go out as planned; `status` says how it ends. A FAILED one
    (a phone number that cannot be one) falls back like a refused send, to `guest`'s other
    channel.

    `status` is the ledger's DeliveryStatus and `guest` app.ports' Guest: type parameters,
    since this module imports nothing of app.
    """

    def __init__(self, status: S, reason: str, guest: G | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.guest = guest


class BodyTooLarge(KeycourierError):
    """A webhook's body is over the endpoint's limit: refused before it is all in memory."""


class StandinRefusal(KeycourierError):
    """A stand-in refuses a request deep in a handler: the answer (status, JSON body, headers)
    its route sends instead."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        super().__init__(f"refused with {status}")
        self.status = status
        self.body = body
        self.headers = headers


class SignInBusy(KeycourierError):
    """Every console password check and every place in the queue is taken (app/console)."""


class SlotRefused(KeycourierError):
    """A sign-in attempt slot is full or locked: `index` says which of the limits asked for
    (name or address) refused, `until` when it frees (app/ledger/console.py)."""

    def __init__(self, index: int, until: datetime) -> None:
        super().__init__(f"sign-in slot {index} refused until {until.isoformat()}")
        self.index, self.until = index, until


class LedgerNotReady(KeycourierError):
    """An operator's command cannot use the ledger as it is (no SQLite file yet, not migrated,
    the server unreachable); the message says what to do (app/ops/ledger_state.py)."""


class IllegalTransition(AssertionError):
    """A delivery status change the state machine does not allow: a bug, never a condition to
    handle (app/ledger/delivery_states.py)."""
