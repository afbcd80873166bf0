"""Asking Seam, Twilio and SendGrid whether keycourier's credentials work, for
`keycourier doctor` and `keycourier register-webhook`.

Each call is a cheap read (Seam's workspace, Twilio's account, SendGrid's key scopes) through
the provider's official SDK. Answers are plain values; every SDK or transport error becomes a
`CheckFailed` whose text names what is wrong and never holds a credential.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import requests
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from seam.exceptions import SeamError, SeamHttpApiError, SeamHttpUnauthorizedError
from seam.seam import Seam
from sendgrid import SendGridAPIClient
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client as TwilioClient

from app.errors import CheckFailed
from app.observability.redaction import redact
from app.settings import Settings

WEBHOOK_PATH = "/webhooks/seam"


@dataclass(frozen=True)
class Workspace:
    name: str
    is_sandbox: bool


@dataclass(frozen=True)
class RegisteredWebhook:
    webhook_id: str
    url: str
    secret: str


def _seam(settings: Settings) -> Seam:
    if settings.seam_api_key is None:
        raise CheckFailed("SEAM_API_KEY is not set")
    try:
        return Seam(
            api_key=settings.seam_api_key.get_secret_value(),
            endpoint=settings.seam_endpoint,
            timeout=settings.provider_timeout_seconds,
        )
    except SeamError as exc:
        raise CheckFailed(f"SEAM_API_KEY: {exc}") from exc


def _seam_failure(exc: Exception) -> CheckFailed:
    if isinstance(exc, SeamHttpUnauthorizedError):
        return CheckFailed("Seam rejected SEAM_API_KEY (401 unauthorized)")
    if isinstance(exc, SeamHttpApiError):
        message = redact(str(exc.args[0] if exc.args else "") or "error")
        return CheckFailed(f"Seam answered {exc.status_code} {exc.code}: {message}")
    return CheckFailed(f"cannot reach Seam: {type(exc).__name__}")


def seam_workspace(settings: Settings) -> Workspace:
    with _seam(settings) as seam:
        try:
            found = seam.workspaces.get()
        except (SeamError, httpx.HTTPError) as exc:
            raise _seam_failure(exc) from exc
    return Workspace(name=str(found.name), is_sandbox=bool(found.is_sandbox))


def seam_webhook_urls_for_secret(settings: Settings) -> list[str] | None:
    """URLs of the workspace's webhooks signed with SEAM_WEBHOOK_SECRET; None if Seam does not
    show webhook secrets."""
    assert settings.seam_webhook_secret is not None
    ours = settings.seam_webhook_secret.get_secret_value()
    with _seam(settings) as seam:
        try:
            hooks = seam.webhooks.list()
        except (SeamError, httpx.HTTPError) as exc:
            raise _seam_failure(exc) from exc
    if not any(hook.secret for hook in hooks):
        return None
    return [hook.url for hook in hooks if hook.secret == ours]


def webhook_url(url: str) -> str:
    """keycourier's endpoint at `url`: a bare https origin gets /webhooks/seam added."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise CheckFailed(f"{url!r} is not an https:// URL: Seam only calls HTTPS endpoints")
    if parts.path in ("", "/"):
        return url.rstrip("/") + WEBHOOK_PATH
    if not parts.path.rstrip("/").endswith(WEBHOOK_PATH):
        raise CheckFailed(f"{url!r} is not keycourier's endpoint: it must end in {WEBHOOK_PATH}")
    return url


def register_webhook(settings: Settings, url: str, event_types: Sequence[str]) -> RegisteredWebhook:
    endpoint = webhook_url(url)
    with _seam(settings) as seam:
        try:
            hook = seam.webhooks.create(url=endpoint, event_types=list(event_types))
        except (SeamError, httpx.HTTPError) as exc:
            raise _seam_failure(exc) from exc
    if not hook.secret:
        raise CheckFailed(f"Seam created webhook {hook.webhook_id} but showed no secret")
    return RegisteredWebhook(webhook_id=hook.webhook_id, url=hook.url, secret=hook.secret)


def twilio_account_status(settings: Settings) -> str:
    """The Twilio account's status (active, suspended, closed)."""
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise CheckFailed("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
    environment: dict[str, str] | None = {} if settings.twilio_base_url else None
    client = TwilioClient(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        environment=environment,
    )
    client.http_client.timeout = settings.provider_timeout_seconds
    if settings.twilio_base_url:
        client.api.base_url = settings.twilio_base_url.rstrip("/")
    try:
        account = client.api.v2010.accounts(settings.twilio_account_sid).fetch()
    except TwilioRestException as exc:
        if exc.status in (401, 403, 404):
            raise CheckFailed(
                "Twilio rejected TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN "
                f"({exc.status}, code {exc.code})"
            ) from exc
        raise CheckFailed(f"Twilio answered {exc.status} (code {exc.code})") from exc
    except (TwilioException, requests.exceptions.RequestException) as exc:
        raise CheckFailed(f"cannot reach Twilio: {type(exc).__name__}") from exc
    return str(account.status)


def sendgrid_scopes(settings: Settings) -> list[str]:
    """The permissions of SENDGRID_API_KEY."""
    if settings.sendgrid_api_key is None:
        raise CheckFailed("SENDGRID_API_KEY is not set")
    client = SendGridAPIClient(
        api_key=settings.sendgrid_api_key.get_secret_value(),
        host=settings.sendgrid_base_url or "https://api.sendgrid.com",
    )
    try:
        response = client.client.scopes.get(timeout=settings.provider_timeout_seconds)
    except SendGridHTTPError as exc:
        if exc.status_code in (401, 403):
            raise CheckFailed(f"SendGrid rejected SENDGRID_API_KEY ({exc.status_code})") from exc
        raise CheckFailed(f"SendGrid answered {exc.status_code}") from exc
    except OSError as exc:  # urllib's URLError, timeouts, refused connections
        raise CheckFailed(f"cannot reach SendGrid: {type(exc).__name__}") from exc
    scopes = json.loads(response.body or b"{}").get("scopes", [])
    return [str(scope) for scope in scopes]
