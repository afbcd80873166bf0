"""EmailSender over the official `sendgrid` SDK (v3 Mail Send).

A fresh SDK client is built for every send: the SDK keeps request headers in a dict shared
by every client it derives and mutates it while sending, so one client is not thread-safe.
python_http_client logs whole payloads at DEBUG, so its loggers are held at WARNING here.

python_http_client builds a urllib opener for every request, and from Python 3.12 on every
opener makes a TLS context, loading the whole CA store: about 10 ms of CPU a send, two thirds of
a worker's CPU per delivery. Its openers here share one context (`_SharedTls`), made once; TLS is
verified exactly as before (the default context: certificates and host names checked). Building
the opener itself (a dozen handlers, each introspected) was still ~40 % of a send: each thread
builds one and keeps it (not shared between threads). Each thread's opener keeps its
connection to SendGrid open between emails (app/adapters/urllib_keepalive.py): urllib alone
paid a TCP and a TLS handshake per email.

Also `check_scopes`, the check `keycourier doctor` makes with the same SDK: its errors become a
`CheckFailed` that names what is wrong and never holds a credential.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import python_http_client.client
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, From, Mail, To
from sendgrid.helpers.mail.exceptions import ApiKeyIncludedException

from app.adapters.retry_hints import retry_after_seconds
from app.adapters.urllib_keepalive import KeepAliveHandler
from app.errors import (
    CheckFailed,
    ConfigError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from app.observability.masking import mask_email, mask_text
from app.ports import EMAIL_REFERENCE_ARG, Email, Sent
from app.settings import Settings

for _name in ("python_http_client", "python_http_client.client"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class _SharedTls:
    """urllib.request as python_http_client sees it, but for its openers: one per thread (an
    opener is not shared between threads), and every one uses the same TLS context."""

    context = ssl.create_default_context()

    def __init__(self) -> None:
        self._openers = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(urllib.request, name)

    def build_opener(self, *handlers: Any) -> urllib.request.OpenerDirector:
        if handlers:  # python_http_client passes none; anything else gets its own opener
            return urllib.request.build_opener(
                urllib.request.HTTPSHandler(context=self.context), *handlers
            )
        opener: urllib.request.OpenerDirector | None = getattr(self._openers, "opener", None)
        if opener is None:
            opener = urllib.request.build_opener(KeepAliveHandler(context=self.context))
            self._openers.opener = opener
        return opener


python_http_client.client.urllib = _SharedTls()
log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
DEFAULT_HOST = "https://api.sendgrid.com"
REFERENCE_ARG = EMAIL_REFERENCE_ARG


class SendGridEmail:
    """Sends one email per call, with a plain-text and an HTML part."""

    def __init__(
        self,
        api_key: str,
        from_email: str,
        base_url: str | None = None,
        timeout: float = 10.0,
        *,
        from_name: str | None = None,
    ) -> None:
        if not api_key:
            # Without one the SDK would quietly read SENDGRID_API_KEY from the environment.
            raise ConfigError("SENDGRID_API_KEY is empty")
        if not from_email:
            raise ConfigError("SENDGRID_FROM_EMAIL is empty")
        self._api_key = api_key
        self._from_email = from_email
        self._from_name = from_name
        self._host = (base_url or DEFAULT_HOST).rstrip("/")
        self._timeout = timeout

    def send_email(self, message: Email) -> Sent:
        ref = f"email ref={message.reference or '-'}"
        try:
            mail = Mail(
                from_email=(
                    From(message.sender or self._from_email, message.sender_name)
                    if message.sender or message.sender_name
                    else From(self._from_email, self._from_name)
                ),
                to_emails=To(message.to),
                subject=message.subject,
                plain_text_content=message.text,
                html_content=message.html,
            )
            if message.reference:
                mail.custom_arg = CustomArg(REFERENCE_ARG, message.reference)
            client = SendGridAPIClient(api_key=self._api_key, host=self._host)
            response = client.client.mail.send.post(request_body=mail.get(), timeout=self._timeout)
        except ApiKeyIncludedException as exc:
            raise PermanentProviderError(
                PROVIDER,
                f"{ref}: content looks like it holds an API key",
                code="api_key_in_content",
            ) from exc
        except SendGridHTTPError as exc:
            raise _from_status(ref, exc) from exc
        except TimeoutError as exc:
            raise UnknownOutcome(
                PROVIDER, f"{ref}: no answer in time (may have been sent)", code="read_timeout"
            ) from exc
        except urllib.error.URLError as exc:
            code = "timeout" if isinstance(exc.reason, TimeoutError) else "connection_error"
            raise TransientProviderError(
                PROVIDER, f"{ref}: {type(exc.reason).__name__}", code=code
            ) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise TransientProviderError(
                PROVIDER, f"{ref}: {type(exc).__name__}", code="connection_error"
            ) from exc
        except (KeyError, ValueError, TypeError) as exc:
            # The SDK's message builder fails this way on an address it cannot parse (a guest's
            # email in Seam that is not an address: found by the property tests); sending it
            # again cannot help.
            raise PermanentProviderError(
                PROVIDER,
                f"{ref}: the message could not be built ({type(exc).__name__})",
                code="invalid_message",
            ) from exc
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        log.debug("sendgrid accepted email ref=%s to=%s", message.reference, mask_email(message.to))
        return Sent(provider=PROVIDER, provider_message_id=message_id or None)

    def recent_messages(self, to: str, since: datetime) -> None:
        """SendGrid has no lookup of sent mail without its Email Activity add-on."""
        return None


def _from_status(ref: str, exc: SendGridHTTPError) -> ProviderError:
    status = int(exc.status_code)
    headers: Any = exc.headers
    detail, field, error_id = _first_error(exc.body)
    text = f"{ref} rejected with HTTP {status}: {mask_text(detail)}"
    if field:
        text += f" (field {field})"
    if status == 429 or status >= 500:
        return TransientProviderError(
            PROVIDER, text, code=error_id, status=status, retry_after=_retry_after(headers)
        )
    return PermanentProviderError(PROVIDER, text, code=error_id, status=status)


def _first_error(body: Any) -> tuple[str, str | None, str | None]:
    """(message, field, error_id) of the first entry in SendGrid's {"errors": [...]}."""
    try:
        errors = json.loads(body)["errors"]
        first = errors[0]
        field, error_id = first.get("field"), first.get("error_id")
        return (
            str(first.get("message") or "error"),
            str(field) if field else None,
            str(error_id) if error_id else None,
        )
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return ("error", None, None)


def _retry_after(headers: Any) -> float | None:
    """Seconds until SendGrid lets us send again: X-RateLimit-Reset (epoch), else Retry-After."""
    if headers is None:
        return None
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return retry_after_seconds(headers.get("Retry-After"))


def check_scopes(settings: Settings) -> list[str]:
    """The permissions of SENDGRID_API_KEY, for `keycourier doctor`."""
    if settings.sendgrid_api_key is None:
        raise CheckFailed("SENDGRID_API_KEY is not set")
    client = SendGridAPIClient(
        api_key=settings.sendgrid_api_key.get_secret_value(),
        host=settings.sendgrid_base_url or DEFAULT_HOST,
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
