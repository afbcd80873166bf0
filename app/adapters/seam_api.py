"""SeamReader over the official `seam` SDK: reads, and encoding a card at an encoder.

Every SDK and transport error is translated here into app.errors, and every SDK resource
into the plain dataclasses of app.ports: nothing from the SDK crosses this module. The
SDK's resources print the PIN and the Instant Key URL in their repr, so they are never
logged, formatted or put into an exception here. What Seam answers is input: every id, name,
phone number, email address and credential is cleaned and fitted to the ledger's columns on
the way out (seam_input.py), so one guest's odd data cannot block another's key.

Also the checks `keycourier doctor` and `keycourier register-webhook` make with the same SDK
(`check_workspace`, `webhook_urls_for_secret`, `register_webhook`): one cheap call each, no
retries, every SDK or transport error a `CheckFailed` whose text names what is wrong and never
holds a credential.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from httpx_retries import Retry, RetryTransport
from seam.exceptions import (
    SeamActionAttemptError,
    SeamActionAttemptFailedError,
    SeamError,
    SeamHttpApiError,
    SeamHttpInvalidResponseError,
    SeamHttpUnauthorizedError,
)
from seam.options import get_endpoint
from seam.seam import Seam

from app.adapters.kept_http import KeptTransport, proxied
from app.adapters.retry_hints import retry_after_seconds
from app.adapters.seam_input import (
    clean_code,
    clean_email,
    clean_id,
    clean_phone,
    clean_text,
    clean_url,
)
from app.errors import (
    CheckFailed,
    ConfigError,
    NotFound,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from app.observability.masking import mask_text
from app.observability.redaction import redact
from app.ports import (
    AccessGrant,
    AccessMethod,
    AccessMode,
    ActionAttempt,
    ActionStatus,
    Encoder,
    EncoderError,
    Guest,
    Related,
    SeamEventSummary,
    Space,
)
from app.settings import Settings
from app.settings.workspaces import SeamWorkspace

log = logging.getLogger(__name__)

PROVIDER = "seam"
EVENTS_PAGE = 500
WEBHOOK_PATH = "/webhooks/seam"
# How often to ask Seam about an encoding in progress while waiting for it.
ACTION_POLL_SECONDS = 0.5
OCCURRED_AT_CHARS = 40  # the ledger's events.occurred_at
_STATUSES: dict[str, ActionStatus] = {"pending": "pending", "success": "success", "error": "error"}
T = TypeVar("T")
# What a Seam error, warning or mutation code looks like.
_CODE = re.compile(r"[a-z0-9_]{1,64}")
# Seam sets no limit on names and keys; the ledger keeps a guest's name and the reservation in
# 200 characters (PostgreSQL refuses longer ones: planning a message failed on them).
MAX_NAME = 200
# Control characters have no place in a name, an address or a message, and PostgreSQL refuses
# a NUL in text (planning a message failed on one): removed from Seam's text as it is read.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_MODES: dict[str, AccessMode] = {
    "code": "code",
    "card": "card",
    "mobile_key": "mobile_key",
    "cloud_key": "cloud_key",
}

# The SDK's own GET retries (2, on 429/5xx/timeouts/connection errors), but with the sleep
# between them capped: by default it obeys a Retry-After of up to 120 s per retry, which would
# park a worker thread; a long hint is better surfaced as TransientProviderError.retry_after.
MAX_SDK_BACKOFF_SECONDS = 1.0


@lru_cache(maxsize=4)
def _tls(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's TLS context, which trusts SSL_CERT_FILE / SSL_CERT_DIR when set (the arguments,
    so that a changed variable gets a context of its own), else certifi's bundle: one a
    process, as loading the bundle costs ~30 ms of CPU each time."""
    return httpx.create_ssl_context()


def _retry_policy() -> Retry:
    return Retry(
        total=2,
        allowed_methods=["GET", "HEAD", "OPTIONS", "PUT", "DELETE"],
        status_forcelist=[429, *range(500, 600)],
        backoff_factor=0.12,
        backoff_jitter=1 / 6,
        max_backoff_wait=MAX_SDK_BACKOFF_SECONDS,
        total_timeout=2 * MAX_SDK_BACKOFF_SECONDS,
    )


class SeamApiReader:
    """Reads access methods, grants, guests and spaces from Seam (or a stand-in at `endpoint`)."""

    def __init__(self, api_key: str, endpoint: str | None = None, timeout: float = 10.0) -> None:
        if not api_key:
            raise ConfigError("SEAM_API_KEY is empty")
        self._hint = threading.local()
        # One TLS context for every thread's client: each loads the CA bundle, ~1 MB.
        tls = _tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        options: dict[str, Any] = {
            "event_hooks": {"response": [self._remember_hint]},
            "verify": tls,
        }
        retries: Retry | None = _retry_policy()
        self._kept: KeptTransport | None = None
        if not proxied(get_endpoint(endpoint)):
            # Over http.client, each thread keeping its connection (app/adapters/kept_http.py),
            # retried as the SDK's own transport is. (httpx reads no proxy variable beside a
            # transport given to it: a proxied endpoint keeps httpx's own.)
            self._kept = KeptTransport(tls)
            options["transport"] = RetryTransport(transport=self._kept, retry=retries)
            retries = None
        self._connect = partial(
            Seam,
            api_key=api_key,
            endpoint=endpoint,
            timeout=timeout,
            retries=retries,
            httpx_options=options,
        )
        self._local = threading.local()
        self._clients: list[Seam] = []
        self._clients_lock = threading.Lock()
        self._client()  # here, so that a malformed key fails at start-up

    @property
    def _seam(self) -> Seam:
        """This thread's SDK client.

        One per thread: httpx's connection pool rescans every pooled connection (quadratically,
        and with a poll() on each idle one) on every request, under one lock; shared by a
        worker's threads, that scan and that lock cost more CPU than the request itself.
        """
        client: Seam | None = getattr(self._local, "seam", None)
        return client if client is not None else self._client()

    def _client(self) -> Seam:
        try:
            client = self._connect()
        except SeamError as exc:
            # The SDK's option and token errors describe the key's kind, never its value.
            raise ConfigError(f"SEAM_API_KEY: {exc}") from exc
        http = getattr(client, "client", None)
        if isinstance(http, httpx.Client):
            http._cookies = _CookiesWhenSet()  # the property's setter would copy it to a plain one
        self._local.seam = client
        with self._clients_lock:
            self._clients.append(client)
        return client

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def __enter__(self) -> SeamApiReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- SeamReader ------------------------------------------------------------------------

    def get_access_method(self, access_method_id: str) -> AccessMethod:
        found = self._call(
            "access_methods.get",
            lambda: self._seam.access_methods.get(access_method_id=access_method_id),
        )
        return _access_method(found, access_method_id)

    def get_access_method_and_related(self, access_method_id: str) -> tuple[AccessMethod, Related]:
        """The access method with its spaces and access grants, in one call where Seam's batch
        holds the access method itself (include=access_methods) and, once issued, its
        credential; otherwise the access method is read on its own too, as before."""
        batch = self._batch(access_method_id, ["spaces", "access_grants", "access_methods"])
        for item in getattr(batch, "access_methods", None) or []:
            if not isinstance(item, Mapping) or item.get("access_method_id") != access_method_id:
                continue
            method = _access_method(SimpleNamespace(**item), access_method_id)
            if method.mode == "card" or not method.is_issued or method.credential is not None:
                return method, _related_of(batch)
        return self.get_access_method(access_method_id), _related_of(batch)

    def get_access_grant(self, access_grant_id: str) -> AccessGrant:
        found = self._call(
            "access_grants.get",
            lambda: self._seam.access_grants.get(access_grant_id=access_grant_id),
        )
        return _grant(found, access_grant_id)

    def get_guest(self, user_identity_id: str) -> Guest:
        found = self._call(
            "user_identities.get",
            lambda: self._seam.user_identities.get(user_identity_id=user_identity_id),
        )
        return Guest(
            user_identity_id=_id(found, "user_identity_id") or user_identity_id,
            full_name=_clean(found, "full_name") or _clean(found, "display_name"),
            phone_number=clean_phone(_text(found, "phone_number")),
            email_address=clean_email(_text(found, "email_address")),
        )

    def get_spaces(self, access_method_id: str) -> list[Space]:
        return self._related(access_method_id, ["spaces"]).spaces

    def get_related(self, access_method_id: str) -> Related:
        """The access method's spaces and access grants, in one call instead of one per grant."""
        return self._related(access_method_id, ["spaces", "access_grants"])

    def _related(self, access_method_id: str, include: list[str]) -> Related:
        return _related_of(self._batch(access_method_id, include))

    def _batch(self, access_method_id: str, include: list[str]) -> Any:
        return self._call(
            "access_methods.get_related",
            lambda: self._seam.access_methods.get_related(
                access_method_ids=[access_method_id],
                # The SDK types this as a list of literal names; ours are plain str.
                include=include,  # type: ignore[arg-type]
            ),
        )

    def list_events(self, since: datetime, event_types: Sequence[str]) -> list[SeamEventSummary]:
        """Every event of these types since `since`, newest first, read page by page."""
        found: list[SeamEventSummary] = []
        offset = 0
        while True:
            page = self._call("events.list", partial(self._events_page, since, event_types, offset))
            found.extend(_summary(event) for event in page)
            if len(page) < EVENTS_PAGE:
                return found
            offset += len(page)

    def _events_page(self, since: datetime, event_types: Sequence[str], offset: int) -> list[Any]:
        return list(
            self._seam.events.list(
                since=since.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                # The SDK types this as a list of literal event names; ours are plain str.
                event_types=list(event_types),  # type: ignore[arg-type]
                limit=EVENTS_PAGE,
                unstable_offset=offset,
            )
        )

    # -- card encoding ---------------------------------------------------------------------

    def list_encoders(self, acs_system_ids: Sequence[str] = ()) -> list[Encoder]:
        # A hotel has a handful of encoders: one page (the SDK's default size) holds them.
        found = self._call(
            "acs.encoders.list",
            lambda: self._seam.acs.encoders.list(acs_system_ids=list(acs_system_ids) or None),
        )
        return [_encoder(item) for item in found]

    def encode_access_method(
        self, access_method_id: str, acs_encoder_id: str, wait_seconds: float
    ) -> ActionAttempt:
        return self._action(
            "access_methods.encode",
            lambda: self._seam.access_methods.encode(
                access_method_id=access_method_id,
                acs_encoder_id=acs_encoder_id,
                wait_for_action_attempt=_wait(wait_seconds),
            ),
        )

    def get_action_attempt(self, action_attempt_id: str) -> ActionAttempt:
        return self._action(
            "action_attempts.get",
            lambda: self._seam.action_attempts.get(
                action_attempt_id=action_attempt_id, wait_for_action_attempt=False
            ),
        )

    def assign_card(
        self, access_method_id: str, card_number: str, wait_seconds: float
    ) -> ActionAttempt:
        return self._action(
            "access_methods.assign_card",
            lambda: self._seam.access_methods.assign_card(
                access_method_id=access_method_id,
                card_number=card_number,
                wait_for_action_attempt=_wait(wait_seconds),
            ),
        )

    def scan_to_assign(
        self, acs_encoder_id: str, user_identity_id: str, wait_seconds: float
    ) -> ActionAttempt:
        return self._action(
            "acs.encoders.scan_to_assign_credential",
            lambda: self._seam.acs.encoders.scan_to_assign_credential(
                acs_encoder_id=acs_encoder_id,
                user_identity_id=user_identity_id,
                wait_for_action_attempt=_wait(wait_seconds),
            ),
        )

    def _action(self, what: str, request: Callable[[], Any]) -> ActionAttempt:
        """An action attempt however it ended. The SDK raises on an attempt that failed, or is
        still pending when the wait ends: both are answers to show the front desk, not errors."""

        def attempt() -> ActionAttempt:
            try:
                return _attempt(request())
            except SeamActionAttemptFailedError as failed:
                return _attempt(failed.action_attempt)
            except SeamActionAttemptError as unfinished:
                # Timed out waiting, or a status this SDK does not know: not finished yet.
                found = _attempt(unfinished.action_attempt)
                return ActionAttempt(found.action_attempt_id, found.action_type, "pending")

        return self._call(what, attempt)

    # -- the boundary ----------------------------------------------------------------------

    def _remember_hint(self, response: httpx.Response) -> None:
        """httpx response hook: keep this thread's last Retry-After, which SDK errors drop."""
        self._hint.retry_after = retry_after_seconds(response.headers.get("retry-after"))

    def _call(self, what: str, request: Callable[[], T]) -> T:
        self._hint.retry_after = None
        try:
            return request()
        except (SeamError, httpx.HTTPError) as exc:
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: Exception) -> ProviderError:
        hint: float | None = getattr(self._hint, "retry_after", None)
        if isinstance(exc, SeamHttpApiError):
            message = mask_text(str(exc.args[0] if exc.args else "") or "error")
            return _by_status(what, exc.status_code, exc.code, message, hint)
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            hint = retry_after_seconds(exc.response.headers.get("retry-after"))
            return _by_status(what, status, None, f"HTTP {status}", hint)
        if isinstance(exc, httpx.TimeoutException):
            return TransientProviderError(PROVIDER, f"{what} timed out", code="timeout")
        if isinstance(exc, httpx.TransportError):
            return TransientProviderError(
                PROVIDER, f"{what} failed: {type(exc).__name__}", code="connection_error"
            )
        if isinstance(exc, SeamHttpInvalidResponseError):
            return TransientProviderError(
                PROVIDER, f"{what} gave an unreadable answer", code="invalid_response"
            )
        return PermanentProviderError(PROVIDER, f"{what} failed: {type(exc).__name__}")


class _CookiesWhenSet(httpx.Cookies):
    """The SDK client's cookie jar, looked at only when a response sets a cookie.

    Seam authenticates each request with its key and sets no cookie, but httpx reads every
    response for one through http.cookiejar, building two urllib stand-ins each time:
    profiled, a seventh of the CPU of a read (bench/RESULTS.md). A response that does set one
    is read as before."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


def _access_method(found: Any, access_method_id: str) -> AccessMethod:
    """An SDK access method (or a batch's, as attributes) as keycourier's, cleaned."""
    mode = _MODES.get(str(getattr(found, "mode", "")))
    if mode is None:
        raise PermanentProviderError(
            PROVIDER,
            f"access method {access_method_id} has a mode keycourier does not know",
            code="unsupported_mode",
        )
    return AccessMethod(
        access_method_id=_id(found, "access_method_id") or access_method_id,
        workspace_id=_id(found, "workspace_id") or "",
        mode=mode,
        display_name=_clean(found, "display_name") or "",
        is_issued=bool(getattr(found, "is_issued", False)),
        is_encoding_required=bool(getattr(found, "is_encoding_required", False)),
        is_ready_for_encoding=bool(getattr(found, "is_ready_for_encoding", False)),
        code=clean_code(_text(found, "code")),
        instant_key_url=clean_url(_text(found, "instant_key_url")),
        is_assignment_required=getattr(found, "is_assignment_required", None) is True,
        is_ready_for_assignment=getattr(found, "is_ready_for_assignment", None) is True,
        errors=_codes(found, "errors", "error_code"),
        warnings=_codes(found, "warnings", "warning_code"),
        pending_mutations=_codes(found, "pending_mutations", "mutation_code"),
    )


def _related_of(batch: Any) -> Related:
    """A get_related batch's spaces and access grants, cleaned; entries without an id are
    skipped."""
    spaces: list[Space] = []
    for item in getattr(batch, "spaces", None) or []:
        space_id = clean_id(item.get("space_id")) if isinstance(item, Mapping) else None
        if space_id is None:
            continue
        name = clean_text(item.get("display_name")) or clean_text(item.get("name")) or ""
        spaces.append(Space(space_id=space_id, name=name))
    grants: dict[str, AccessGrant] = {}
    for item in getattr(batch, "access_grants", None) or []:
        grant_id = clean_id(item.get("access_grant_id")) if isinstance(item, Mapping) else None
        if grant_id is not None:
            grants[grant_id] = _grant(SimpleNamespace(**item), grant_id)
    return Related(spaces=spaces, grants=grants)


def _wait(wait_seconds: float) -> bool | dict[str, float]:
    """The SDK's wait_for_action_attempt for a wait of at most `wait_seconds` (none at 0)."""
    if wait_seconds <= 0:
        return False
    return {"timeout": wait_seconds, "polling_interval": min(ACTION_POLL_SECONDS, wait_seconds)}


def _by_status(
    what: str, status: int, code: str | None, message: str, retry_after: float | None
) -> ProviderError:
    text = f"{what} failed with HTTP {status}: {message}"
    if status == 404 or (code or "").endswith("_not_found"):
        return NotFound(PROVIDER, text, code=code, status=status)
    if status == 429 or status >= 500:
        return TransientProviderError(
            PROVIDER, text, code=code, status=status, retry_after=retry_after
        )
    return PermanentProviderError(PROVIDER, text, code=code, status=status)


def _grant(found: Any, access_grant_id: str) -> AccessGrant:
    space_ids = getattr(found, "space_ids", None) or []
    method_ids = getattr(found, "access_method_ids", None) or []
    cannot_create = [
        item
        for item in _items(found, "errors")
        if _field(item, "error_code") == "cannot_create_requested_access_methods"
    ]
    missing_devices = [
        str(device)
        for item in cannot_create
        for device in _field(item, "missing_device_ids") or []
        if isinstance(device, str)
    ]
    message = next((m for m in (_field(i, "message") for i in cannot_create) if m), None)
    missing_methods = [
        clean_text(str(_field(requested, "display_name") or _field(requested, "mode") or "")) or ""
        for requested in _items(found, "requested_access_methods")
        if not _field(requested, "created_access_method_ids")
    ]
    return AccessGrant(
        access_grant_id=_id(found, "access_grant_id") or access_grant_id,
        user_identity_id=_id(found, "user_identity_id"),
        display_name=_clean(found, "display_name") or "",
        starts_at=_instant(found, "starts_at", access_grant_id),
        ends_at=_instant(found, "ends_at", access_grant_id),
        space_ids=_ids(space_ids),
        access_grant_key=_clean(found, "access_grant_key"),
        reservation_key=_clean(found, "reservation_key"),
        access_method_ids=_ids(method_ids),
        workspace_id=_id(found, "workspace_id"),
        errors=_codes(found, "errors", "error_code"),
        missing_device_ids=_ids(list(dict.fromkeys(missing_devices))),
        missing_access_methods=tuple(m for m in missing_methods if m),
        error_message=mask_text(clean_text(message) or "") if isinstance(message, str) else None,
    )


def _encoder(found: Any) -> Encoder:
    errors = [
        EncoderError(
            _text(error, "error_code") or "unknown", mask_text(_text(error, "message") or "")
        )
        for error in getattr(found, "errors", None) or []
    ]
    return Encoder(
        acs_encoder_id=_id(found, "acs_encoder_id") or "",
        acs_system_id=_id(found, "acs_system_id"),
        display_name=_clean(found, "display_name") or "",
        errors=tuple(errors),
    )


def _attempt(found: Any) -> ActionAttempt:
    """Our ActionAttempt from the SDK's. The success result (the credential written on the card)
    is left behind: keycourier needs only that it succeeded."""
    status = _STATUSES.get(str(getattr(found, "status", "")), "pending")
    error = getattr(found, "error", None)
    error_type = _text(error, "type") if error is not None else None
    error_message = _text(error, "message") if error is not None else None
    if status == "error" and error_type is None:
        error_type = "uncategorized_error"
    return ActionAttempt(
        action_attempt_id=_text(found, "action_attempt_id") or "",
        action_type=_text(found, "action_type") or "",
        status=status,
        error_type=error_type,
        error_message=mask_text(error_message) if error_message else None,
    )


def _summary(event: Any) -> SeamEventSummary:
    # access_method.* events list their grants; access_grant.* events name their one grant.
    grant_ids = getattr(event, "access_grant_ids", None) or [
        g for g in [_text(event, "access_grant_id")] if g
    ]
    return SeamEventSummary(
        event_id=_id(event, "event_id") or "",
        event_type=_id(event, "event_type") or "",
        workspace_id=_id(event, "workspace_id"),
        access_method_id=_id(event, "access_method_id"),
        access_grant_ids=_ids(grant_ids),
        occurred_at=clean_text(_text(event, "occurred_at"), OCCURRED_AT_CHARS),
    )


def _id(resource: Any, name: str) -> str | None:
    return clean_id(getattr(resource, name, None))


def _ids(values: object) -> tuple[str, ...]:
    items = values if isinstance(values, list | tuple) else []
    return tuple(found for found in map(clean_id, items) if found is not None)


def _clean(resource: Any, name: str) -> str | None:
    return clean_text(getattr(resource, name, None))


def _items(resource: Any, name: str) -> list[Any]:
    """A list field of a resource (an SDK dataclass or a plain mapping), [] when absent or odd."""
    value = _field(resource, name)
    return list(value) if isinstance(value, list | tuple) else []


def _field(item: Any, name: str) -> Any:
    """A field of an SDK resource or of a mapping inside one (the SDK keeps variants it does not
    know, such as a new error code, as mappings)."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _codes(resource: Any, name: str, code_field: str) -> tuple[str, ...]:
    """The codes of a resource's errors, warnings or pending mutations, once each, in Seam's
    order. Codes travel into the ledger and the logs: one that is not a plain code (lower-case
    letters, digits, underscores) or has none (which the spec does not allow) counts as
    `unknown`."""
    codes = []
    for item in _items(resource, name):
        code = _field(item, code_field)
        plain = isinstance(code, str) and _CODE.fullmatch(code) is not None
        codes.append(code if plain else "unknown")
    return tuple(dict.fromkeys(codes))


def _text(resource: Any, name: str) -> str | None:
    value = getattr(resource, name, None)
    return value if isinstance(value, str) else None


def _instant(resource: Any, name: str, resource_id: str) -> datetime | None:
    value = _text(resource, name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        # Kept as unknown (no delivery window, no expiry) rather than failing every guest of
        # the access method: the guest still gets their key.
        log.warning("%s of %s is not a timestamp: taken as unknown", name, resource_id)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- checks (doctor, register-webhook) --------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    name: str
    is_sandbox: bool
    workspace_id: str | None = None


@dataclass(frozen=True)
class RegisteredWebhook:
    webhook_id: str
    url: str
    secret: str


def _check_client(settings: Settings, workspace: SeamWorkspace | None = None) -> Seam:
    """A client with SEAM_API_KEY, or with `workspace`'s key (SEAM_WORKSPACES_FILE)."""
    name = _key_name(workspace)
    if workspace is not None:
        try:
            key = workspace.require_api_key()
        except ConfigError as exc:
            raise CheckFailed(str(exc)) from None
    elif settings.seam_api_key is None:
        raise CheckFailed("SEAM_API_KEY is not set")
    else:
        key = settings.seam_api_key.get_secret_value()
    try:
        return Seam(
            api_key=key, endpoint=settings.seam_endpoint, timeout=settings.provider_timeout_seconds
        )
    except SeamError as exc:
        raise CheckFailed(f"{name}: {exc}") from exc


def _key_name(workspace: SeamWorkspace | None) -> str:
    return workspace.api_key_env if workspace is not None else "SEAM_API_KEY"


def _check_failure(exc: Exception, key_name: str = "SEAM_API_KEY") -> CheckFailed:
    if isinstance(exc, SeamHttpUnauthorizedError):
        return CheckFailed(f"Seam rejected {key_name} (401 unauthorized)")
    if isinstance(exc, SeamHttpApiError):
        message = redact(str(exc.args[0] if exc.args else "") or "error")
        return CheckFailed(f"Seam answered {exc.status_code} {exc.code}: {message}")
    return CheckFailed(f"cannot reach Seam: {type(exc).__name__}")


def check_workspace(settings: Settings, workspace: SeamWorkspace | None = None) -> Workspace:
    """The workspace SEAM_API_KEY (or `workspace`'s key) opens."""
    with _check_client(settings, workspace) as seam:
        try:
            found = seam.workspaces.get()
        except (SeamError, httpx.HTTPError) as exc:
            raise _check_failure(exc, _key_name(workspace)) from exc
    return Workspace(
        name=str(found.name),
        is_sandbox=bool(found.is_sandbox),
        workspace_id=str(found.workspace_id),
    )


def webhook_urls_for_secret(
    settings: Settings, workspace: SeamWorkspace | None = None
) -> list[str] | None:
    """URLs of the workspace's webhooks signed with SEAM_WEBHOOK_SECRET (or `workspace`'s
    secret); None if Seam does not show webhook secrets."""
    if workspace is not None:
        ours = workspace.require_webhook_secret()
    else:
        assert settings.seam_webhook_secret is not None
        ours = settings.seam_webhook_secret.get_secret_value()
    with _check_client(settings, workspace) as seam:
        try:
            hooks = seam.webhooks.list()
        except (SeamError, httpx.HTTPError) as exc:
            raise _check_failure(exc, _key_name(workspace)) from exc
    if not any(hook.secret for hook in hooks):
        return None
    return [hook.url for hook in hooks if hook.secret == ours]


def webhook_url(url: str, workspace_id: str | None = None) -> str:
    """keycourier's endpoint at `url`: a bare https origin gets /webhooks/seam added (and
    /<workspace_id> for a workspace of SEAM_WORKSPACES_FILE)."""
    path = WEBHOOK_PATH if workspace_id is None else f"{WEBHOOK_PATH}/{workspace_id}"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise CheckFailed(f"{url!r} is not an https:// URL: Seam only calls HTTPS endpoints")
    if parts.path in ("", "/"):
        return url.rstrip("/") + path
    if parts.path.rstrip("/").endswith(WEBHOOK_PATH) and workspace_id is not None:
        return url.rstrip("/") + f"/{workspace_id}"
    if not parts.path.rstrip("/").endswith(path):
        raise CheckFailed(f"{url!r} is not keycourier's endpoint: it must end in {path}")
    return url


def register_webhook(
    settings: Settings,
    url: str,
    event_types: Sequence[str],
    workspace: SeamWorkspace | None = None,
) -> RegisteredWebhook:
    """Create the Seam webhook for keycourier's endpoint at `url`, with its signing secret; for
    `workspace`, with its key, at its own path."""
    endpoint = webhook_url(url, workspace.workspace_id if workspace else None)
    with _check_client(settings, workspace) as seam:
        try:
            hook = seam.webhooks.create(url=endpoint, event_types=list(event_types))
        except (SeamError, httpx.HTTPError) as exc:
            raise _check_failure(exc, _key_name(workspace)) from exc
    if not hook.secret:
        raise CheckFailed(f"Seam created webhook {hook.webhook_id} but showed no secret")
    return RegisteredWebhook(webhook_id=hook.webhook_id, url=hook.url, secret=hook.secret)
