"""Logging set-up, with a redaction step every record passes through.

Code never logs a credential on purpose; this filter is the second line: it masks phone
numbers and email addresses, and removes anything shaped like a secret, an API key or an
Instant Key URL, whichever library wrote the line.
"""

from __future__ import annotations

import logging
import re
import sys

from app.masking import mask_text
from app.settings import Settings

_SECRETS = re.compile(
    r"whsec_[A-Za-z0-9+/=]+"  # Svix signing secrets
    r"|seam_[A-Za-z0-9_]+"  # Seam API keys
    r"|SG\.[A-Za-z0-9_.-]+"  # SendGrid API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"  # bearer tokens
    r"|https?://ik\.seam\.co/\S+"  # Instant Key URLs
)
# Context a log call may pass with extra=...; shown after the message.
CONTEXT_FIELDS = ("event_id", "delivery_id", "task_id", "event_type", "channel", "kind", "outcome")
# Libraries that log request bodies or parameters (a message body holds the PIN).
QUIET_LOGGERS = ("twilio.http_client", "python_http_client", "httpx", "httpcore", "urllib3")


def redact(text: str) -> str:
    return mask_text(_SECRETS.sub("[redacted]", text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later from exc_info; render and redact them now.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = [
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        ]
        return f"{base} {' '.join(extras)}" if extras else base


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
