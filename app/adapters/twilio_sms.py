"""SmsSender over the official `twilio` SDK (Programmable Messaging).

Errors are translated into app.errors at this boundary, with phone numbers masked; the
message body never appears in an exception or a log line. The SDK logs every request's
parameters at INFO on "twilio.http_client", so that logger is held at WARNING here.

Also `check_account`, the check `keycourier doctor` makes with the same SDK: its errors become a
`CheckFailed` that names what is wrong and never holds a credential.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.adapters.kept_http import proxied
from app.adapters.retry_hints import retry_after_seconds
from app.adapters.twilio_http import KeptHttpClient, tls_as_requests
from app.errors import (
    CheckFailed,
    ConfigError,
    NoAnswer,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcome,
)
from app.observability.masking import mask_phone, mask_text
from app.ports import ProviderMessage, Sent, Sms, WhatsApp
from app.settings import Settings

logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

PROVIDER = "twilio"
# Codes that no retry can fix: invalid number, unsubscribed (STOP), not a mobile, region not
# enabled, unreachable via this sender. Other 4xx are permanent too; these are named for clarity.
PERMANENT_CODES = frozenset({21211, 21408, 21610, 21612, 21614})
TOO_MANY_REQUESTS = 20429
# Looking up a send whose answer was lost: how many recent messages to read, and how far
# Twilio's clock may be behind ours.
RECENT_LIMIT = 50
POOL_SIZE = 64
DEFAULT_BASE_URL = "https://api.twilio.com"
CLOCK_SKEW = timedelta(minutes=2)


class TwilioClient:
    """The SDK client the Twilio adapters share (SMS, WhatsApp): its HTTP client (see
    `_http_client`), the provider timeout, each thread's last response headers (for
    Retry-After), and the translation of the SDK's errors into app.errors."""

    def __init__(
        self, account_sid: str, auth_token: str, base_url: str | None, timeout: float
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
        self._last = threading.local()
        # With a base URL override, TWILIO_REGION/TWILIO_EDGE must not rewrite its host.
        environment: dict[str, str] | None = {} if base_url else None
        self.client = Client(
            account_sid,
            auth_token,
            http_client=self._http_client(base_url or DEFAULT_BASE_URL, timeout),
            environment=environment,
        )
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")

    def _http_client(self, url: str, timeout: float) -> HttpClient:
        """The proxy and CA-bundle variables, read once as requests reads them for `url` (not
        on every message: requests scans the whole environment twice per request). Without a
        proxy for Twilio, `KeptHttpClient` (app/adapters/twilio_http.py); through one, the
        SDK's own client over requests, with a pool sized for a worker's threads (the SDK
        sizes it by CPU count, and a pool too small reconnects for every message)."""
        session = requests.Session()
        found = session.merge_environment_settings(url, {}, None, None, None)
        if not proxied(url):
            session.close()
            return KeptHttpClient(timeout, tls_as_requests(found["verify"]), self._remember_headers)
        http_client = TwilioHttpClient(
            timeout=timeout, request_hooks={"response": [self._remember_requests_headers]}
        )
        assert http_client.session is not None
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        http_client.session.mount("https://", adapter)
        http_client.session.mount("http://", adapter)
        http_client.session.proxies.update(found["proxies"])
        http_client.session.verify = found["verify"]
        http_client.session.trust_env = False
        return http_client

    def forget_headers(self) -> None:
        self._last.headers = {}

    def create(self, params: dict[str, Any], ref: str, scrub: Callable[[Any], str]) -> str | None:
        """Create one message; its SID. The SDK's errors become ours (see `translate`)."""
        self.forget_headers()
        try:
            created = self.client.messages.create(**params)
        except (TwilioException, requests.exceptions.RequestException, NoAnswer) as exc:
            raise self.translate(exc, ref, scrub) from exc
        sid = getattr(created, "sid", None)
        return sid if isinstance(sid, str) else None

    def _remember_headers(self, headers: Mapping[str, str]) -> None:
        """Keep this thread's last response headers (for Retry-After)."""
        self._last.headers = dict(headers)

    def _remember_requests_headers(
        self, response: requests.Response, *args: Any, **kwargs: Any
    ) -> None:
        """requests response hook: the same."""
        self._remember_headers(response.headers)

    def retry_after(self) -> float | None:
        headers: dict[str, str] = getattr(self._last, "headers", {})
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        return retry_after_seconds(value)

    def translate(self, exc: Exception, ref: str, scrub: Callable[[Any], str]) -> ProviderError:
        """`exc` as one of ours; `scrub` removes the message's text and destination from what
        Twilio's error says (the cause is chained, so it is scrubbed in place too)."""
        if isinstance(exc, TwilioRestException | TwilioServiceException):
            if isinstance(exc, TwilioRestException):
                exc.msg = scrub(exc.msg)
                detail = exc.msg
            else:
                exc.detail = scrub(exc.detail)
                detail = f"{exc.title}: {exc.detail or ''}"
            status = int(exc.status) if exc.status is not None else None
            code = int(exc.code) if exc.code is not None else None
            text = f"{ref} rejected with HTTP {status}: {detail}"
            transient = (
                code == TOO_MANY_REQUESTS or status == 429 or (status is not None and status >= 500)
            )
            if transient:
                return TransientProviderError(
                    PROVIDER,
                    text,
                    code=str(code) if code else None,
                    status=status,
                    retry_after=self.retry_after(),
                )
            return PermanentProviderError(
                PROVIDER, text, code=str(code) if code else None, status=status
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            # Nothing reached Twilio: safe to resend.
            return TransientProviderError(PROVIDER, f"{ref}: connect timed out", code="timeout")
        if isinstance(exc, requests.exceptions.Timeout):
            # The request went out but no answer came: Twilio may have accepted it.
            return UnknownOutcome(
                PROVIDER, f"{ref}: no answer in time (may have been sent)", code="read_timeout"
            )
        if isinstance(exc, NoAnswer):  # written whole, the answer cut off (twilio_http.py)
            return UnknownOutcome(
                PROVIDER, f"{ref}: the answer was cut off (may have been sent)", code="answer_lost"
            )
        if isinstance(exc, requests.exceptions.RequestException):
            return TransientProviderError(
                PROVIDER, f"{ref}: {type(exc).__name__}", code="connection_error"
            )
        return PermanentProviderError(PROVIDER, f"{ref}: {type(exc).__name__}")

    def recent(self, to: str, since: datetime, ref: str) -> list[ProviderMessage]:
        """Twilio's newest messages to `to` (as Twilio spells it) created since `since`
        (allowing for clock skew)."""
        try:
            found = self.client.messages.list(to=to, limit=RECENT_LIMIT, page_size=RECENT_LIMIT)
        except (TwilioRestException, requests.exceptions.RequestException, NoAnswer) as exc:
            raise self.translate(exc, ref, lambda text: mask_text(str(text or ""))) from exc
        except TwilioException as exc:
            # The SDK's list pages raise a bare TwilioException on any HTTP error; a lookup is
            # a read, safe to try again.
            raise TransientProviderError(
                PROVIDER, f"message lookup failed: {type(exc).__name__}", code="lookup_failed"
            ) from exc
        cutoff = since - CLOCK_SKEW
        messages = []
        for item in found:
            created = getattr(item, "date_created", None)
            sid, body = getattr(item, "sid", None), getattr(item, "body", None)
            if not isinstance(sid, str) or not isinstance(body, str):
                continue
            if isinstance(created, datetime) and created < cutoff:
                continue
            messages.append(ProviderMessage(sid, body, created))
        return messages


class TwilioSms:
    """Sends one SMS per call. Prefers the Messaging Service when one is configured."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        *,
        status_callback: str | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
        if not from_number and not messaging_service_sid:
            raise ConfigError(
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID must be set to send SMS"
            )
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback = status_callback
        self._twilio = TwilioClient(account_sid, auth_token, base_url, timeout)
        self._client = self._twilio.client

    def send_sms(self, message: Sms) -> Sent:
        sender: dict[str, Any]
        if message.sender is not None:
            # The hotel's own sender (properties.toml) replaces the configured one.
            sender = (
                {"messaging_service_sid": message.sender}
                if message.sender.startswith("MG")
                else {"from_": message.sender}
            )
        elif self._messaging_service_sid:
            sender = {"messaging_service_sid": self._messaging_service_sid}
        else:
            sender = {"from_": self._from_number}
        if self._status_callback:
            sender["status_callback"] = status_callback_url(self._status_callback, message)
        self._twilio.forget_headers()
        try:
            created = self._client.messages.create(to=message.to, body=message.body, **sender)
        except (TwilioException, requests.exceptions.RequestException, NoAnswer) as exc:
            raise self._translate(exc, message) from exc
        sid = getattr(created, "sid", None)
        log.debug("twilio accepted sms ref=%s to=%s", message.reference, mask_phone(message.to))
        return Sent(provider=PROVIDER, provider_message_id=sid if isinstance(sid, str) else None)

    def recent_messages(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Twilio's newest messages to `to` created since `since` (allowing for clock skew)."""
        return self._twilio.recent(to, since, "sms lookup")

    def _translate(self, exc: Exception, message: Sms) -> ProviderError:
        return self._twilio.translate(
            exc, f"sms ref={message.reference or '-'}", lambda text: _scrub(text, message)
        )


def status_callback_url(base: str, message: Sms | WhatsApp) -> str:
    """Where Twilio reports this message's status: `base`, with our opaque reference (the
    delivery id, `kc-<id>`) in the query so the callback finds its delivery even before the
    worker has recorded Twilio's answer. Twilio signs the whole URL, query included."""
    if not message.reference:
        return base
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({'ref': message.reference})}"


def _scrub(text: Any, message: Sms) -> str:
    """Provider text with the body removed and every phone number and email masked."""
    out = str(text or "")
    if message.body:
        out = out.replace(message.body, "[body]")
    return mask_text(out.replace(message.to, mask_phone(message.to)))


def check_account(settings: Settings) -> str:
    """The Twilio account's status (active, suspended, closed), for `keycourier doctor`."""
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise CheckFailed("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
    environment: dict[str, str] | None = {} if settings.twilio_base_url else None
    client = Client(
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
