"""EmailSender over the official `sendgrid` SDK (v3 Mail Send).

A fresh SDK client is built for every send: the SDK keeps request headers in a dict shared
by every client it derives and mutates it while sending, so one client is not thread-safe.
python_http_client logs whole payloads at DEBUG, so its loggers are held at WARNING here.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
from datetime import datetime
from typing import Any

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, From, Mail, To
from sendgrid.helpers.mail.exceptions import ApiKeyIncludedException

from app.adapters.retry_hints import retry_after_seconds
from app.errors import (
    ConfigError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from app.observability.masking import mask_email, mask_text
from app.ports import Email, Sent

for _name in ("python_http_client", "python_http_client.client"):
    logging.getLogger(_name).setLevel(logging.WARNING)
log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
DEFAULT_HOST = "https://api.sendgrid.com"
REFERENCE_ARG = "keycourier_ref"


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
                from_email=From(self._from_email, self._from_name),
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
        log.info("sendgrid accepted email ref=%s to=%s", message.reference, mask_email(message.to))
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
