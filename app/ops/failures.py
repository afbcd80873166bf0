"""What the `keycourier` command prints when it cannot do its job: one line saying what is
wrong and what to do, never a traceback, and an exit status that is not 0.

An operator running `keycourier sweep` on a machine whose ledger was never migrated, or
`keycourier reconcile` without a network, needs the fix, not seventy lines of stack. Only
keycourier's own errors (app/errors.py), whose messages hold codes and ids and never a secret,
are explained here; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from app.errors import (
    BrokerUnavailable,
    ConfigError,
    KeycourierError,
    LedgerNotReady,
    LedgerUnavailable,
    ProviderError,
    TemplateError,
)

# Exit statuses: 2 for a setting to fix (as argparse's usage errors), 1 for everything else.
CONFIG_EXIT = 2
FAILURE_EXIT = 1

# What a provider's credentials are called, for "X refused its credentials" lines.
CREDENTIALS = {
    "seam": "SEAM_API_KEY",
    "twilio": "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
    "sendgrid": "SENDGRID_API_KEY",
}
ENDPOINTS = {"seam": "SEAM_ENDPOINT", "twilio": "TWILIO_BASE_URL", "sendgrid": "SENDGRID_BASE_URL"}
NAMES = {"seam": "Seam", "twilio": "Twilio", "sendgrid": "SendGrid"}
UNREACHABLE_CODES = frozenset({"connection_error", "timeout"})


def explain(exc: Exception) -> tuple[str, int] | None:
    """The line to print (without the `keycourier: ` prefix) and the exit status, for an error
    an operator can act on; None for anything else."""
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}", CONFIG_EXIT
    if isinstance(exc, LedgerNotReady):
        return str(exc), FAILURE_EXIT
    if isinstance(exc, LedgerUnavailable):
        return (
            f"the ledger cannot be used ({exc}): check DATABASE_URL and that the database is "
            "up and migrated (`keycourier doctor` says which)",
            FAILURE_EXIT,
        )
    if isinstance(exc, BrokerUnavailable):
        return (
            f"cannot reach the broker ({exc}): check REDIS_URL and that Redis is up",
            FAILURE_EXIT,
        )
    if isinstance(exc, ProviderError):
        return _provider(exc), FAILURE_EXIT
    if isinstance(exc, TemplateError):
        return (
            f"a template cannot be used: {exc}; `keycourier templates check` lists every problem",
            FAILURE_EXIT,
        )
    if isinstance(exc, KeycourierError):
        return f"{exc}; `keycourier doctor` checks every setting", FAILURE_EXIT
    return None


def _provider(exc: ProviderError) -> str:
    name = NAMES.get(exc.provider, exc.provider)
    endpoint = ENDPOINTS.get(exc.provider)
    if exc.code in UNREACHABLE_CODES:
        where = f" (and {endpoint}, if you set it)" if endpoint else ""
        return (
            f"cannot reach {name} ({exc.message}): check this machine's network{where}, "
            "then run the command again"
        )
    if exc.status in (401, 403):
        credentials = CREDENTIALS.get(exc.provider, "its credentials")
        return f"{name} refused {credentials} ({exc.message}): check the setting"
    return f"{name} failed ({exc}): run the command again later; `keycourier doctor` checks it"
