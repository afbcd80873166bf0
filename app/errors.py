"""keycourier's exceptions, all in one tree.

    KeycourierError
    ├── ConfigError                 a setting is missing or malformed; start-up stops
    ├── TemplateError               a message template cannot be rendered (file and line)
    ├── LedgerUnavailable           the database cannot be reached; the caller retries or 503s
    ├── LedgerRefused               the database refused a value (too long, a NUL): not retried
    ├── BrokerUnavailable           the broker cannot be reached; the caller retries or 503s
    └── ProviderError               a call to Seam, Twilio or SendGrid failed
        ├── TransientProviderError  worth retrying: timeouts, connection errors, 429, 5xx
        │   └── UnknownOutcome      the request left but no answer came: it may have been sent
        └── PermanentProviderError  retrying cannot help: invalid number, unsubscribed, 4xx
            └── NotFound            the Seam resource no longer exists

Third-party exceptions are translated at the adapter boundary (`raise Ours(...) from exc`),
and messages carry codes and ids only: never a PIN, an Instant Key URL, a secret or a token.
"""

from __future__ import annotations


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
