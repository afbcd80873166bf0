"""Optional error reporting to Sentry (SENTRY_DSN), scrubbed before anything leaves.

sentry-sdk is an optional dependency (`pip install keycourier[sentry]`; the Docker image has it).
Nothing personal is sent: no request bodies, headers, cookies, client addresses or local
variables, and every string left in an event (messages, exception values, breadcrumbs, log
records) goes through the same redaction step as the logs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from app.observability.redaction import hide_configured_secrets, redact_value
from app.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

log = logging.getLogger(__name__)

# Parts of a Sentry event that may carry what a guest or Seam sent us.
DROPPED_REQUEST_PARTS = ("data", "cookies", "headers", "query_string", "env")


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send (and before_breadcrumb): the event without personal data."""
    request = event.get("request")
    if isinstance(request, dict):
        for part in DROPPED_REQUEST_PARTS:
            request.pop(part, None)
    event.pop("user", None)
    for thread_or_exception in ("exception", "threads"):
        container = event.get(thread_or_exception)
        values = container.get("values", []) if isinstance(container, dict) else []
        for value in values:
            for frame in (value.get("stacktrace") or {}).get("frames", []):
                frame.pop("vars", None)
    scrubbed: dict[str, Any] = redact_value(event)
    return scrubbed


def init_error_reports(settings: Settings, **options: Any) -> bool:
    """Start Sentry when SENTRY_DSN is set; False when it is not (or sentry-sdk is missing)."""
    if settings.sentry_dsn is None:
        return False
    hide_configured_secrets(settings)
    try:
        import sentry_sdk
    except ImportError:
        log.warning("SENTRY_DSN is set but sentry-sdk is not installed: errors are not reported")
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=_before_send,
        before_send_transaction=_before_send,
        before_breadcrumb=scrub_event,
        **options,
    )
    return True


def _before_send(event: Event, hint: Hint) -> Event | None:
    return cast("Event", scrub_event(dict(event), hint))
