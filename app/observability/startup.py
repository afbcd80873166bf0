"""The one line a web process or a worker logs when it starts: how it is set up, at a glance.

A newcomer's first question after `keycourier serve` is "is it sending for real, and where do
I point Seam and my browser?": the line says whether each channel is live or a dry run, whether
the ops console is on (and what turns it on), and the webhook and console URLs. It names
settings, never their values: no key, token, secret or password, and URLs without credentials.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from app.settings import Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/seam"
CONSOLE_PATH = "/ops/"


def summary(settings: Settings, process: str, base_url: str | None = None) -> str:
    """`process` ("web", "worker") and how it is set up; `base_url` is where the web process
    answers (PUBLIC_BASE_URL wins: it is what Seam and people reach)."""
    sms = "live (Twilio)" if settings.sms_enabled else "dry run (no Twilio credentials)"
    email = "live (SendGrid)" if settings.email_enabled else "dry run (no SendGrid credentials)"
    parts = [f"keycourier {process} starting", f"sms {sms}", f"email {email}"]
    base = settings.public_base_url or base_url
    if process == "web":
        if settings.ops_users is not None and settings.ops_session_secret is not None:
            console = f"on at {base}{CONSOLE_PATH}" if base else "on at /ops/"
        else:
            where = f" ({base}{CONSOLE_PATH} shows how)" if base else ""
            console = f"off: set OPS_USERS and OPS_SESSION_SECRET{where}"
        parts.append(f"console {console}")
        if base:
            parts.append(f"Seam webhook URL {base}{WEBHOOK_PATH}")
    parts.append(f"ledger {_without_credentials(settings.database_url)}")
    parts.append(
        "broker embedded (this machine only)"
        if settings.embedded_broker
        else f"broker {_without_credentials(settings.broker_url)}"
    )
    return "; ".join(parts)


def log_summary(settings: Settings, process: str, base_url: str | None = None) -> None:
    log.info(summary(settings, process, base_url))


def _without_credentials(url: str) -> str:
    """A database or broker URL with no user, password or query (which may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if "sqlite" in parts.scheme:
        return f"sqlite {url.split(':///', 1)[-1]}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
