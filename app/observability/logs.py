"""Logging: one JSON object per line (structlog over the standard library), redacted.

keycourier's modules keep calling `logging.getLogger(__name__)`; Celery, uvicorn and the SDKs
log through the standard library too. Every record reaches the root handler, whose structlog
`ProcessorFormatter` adds the context (event id, delivery id, task id: from the record's
`extra=` or bound per task by the worker), renders any traceback, runs the redaction step
(app/observability/redaction.py) over every field, and writes JSON (or `key=value` text with
LOG_FORMAT=console).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.observability.redaction import hide_configured_secrets, redact_value
from app.settings import Settings

# Context a log call may pass with extra=...; it becomes fields of the JSON line.
CONTEXT_FIELDS = (
    "event_id",
    "delivery_id",
    "task_id",
    "task",
    "event_type",
    "channel",
    "kind",
    "outcome",
    # The front desk's actions (issue 7): who asked, on what. An actor is an operator's
    # sign-in name; a resend's reason is one of app.delivery.resend.REASONS, never free text.
    "actor",
    "access_method_id",
    "acs_encoder_id",
    "action_attempt_id",
    "reason",
)
# Libraries that log request bodies or parameters (a message body holds the PIN).
QUIET_LOGGERS = ("twilio.http_client", "python_http_client", "httpx", "httpcore", "urllib3")
# Celery's two info lines per task ("received", "succeeded in ...: <return value>") say
# nothing keycourier's own lines do not ("event processed", "delivery sent", "will retry"),
# and cost a busy worker a line each per event. Kept at LOG_LEVEL=DEBUG; Celery's warnings
# and errors about a task (a failure, a time limit) are always logged.
TASK_CHATTER_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def redact_fields(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """The redaction step: every field of the line, message and traceback included."""
    redacted: EventDict = redact_value(event_dict)
    return redacted


def _drop_internals(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    return event_dict


def _processors(log_format: str) -> tuple[list[Processor], list[Processor]]:
    """(what every record goes through first, what turns it into a line)."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    final: list[Processor] = [
        _drop_internals,
        # Tracebacks become text here, before redaction reads them.
        structlog.processors.format_exc_info,
        redact_fields,
        # "event" would read as a Seam event: the line's text is its "message".
        structlog.processors.EventRenamer("message"),
        renderer,
    ]
    return shared, final


class LineHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that turns the record into its line before taking the handler's lock,
    and holds the lock only to write it.

    The standard handler formats under its lock: here that is the whole structlog chain,
    redaction and JSON, ~150 µs of CPU. A worker's threads log a few lines per event, and a
    thread that lost the interpreter while formatting held every other thread's line (and
    task) behind it: profiled, a fifth of a starting worker's task time was spent waiting for
    this lock."""

    def handle(self, record: logging.LogRecord) -> bool:
        passed = self.filter(record)
        if isinstance(passed, logging.LogRecord):
            record = passed
        if passed:
            try:
                line = self.format(record) + self.terminator
            except Exception:
                self.handleError(record)
                return True
            with self.lock:  # type: ignore[union-attr]
                try:
                    self.stream.write(line)
                    self.flush()
                except RecursionError:
                    raise
                except Exception:
                    self.handleError(record)
        return bool(passed)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every record, from any library, through redaction to `stream` (stderr)."""
    hide_configured_secrets(settings)
    shared, final = _processors(settings.log_format)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(allow=CONTEXT_FIELDS)],
        processors=final,
    )
    handler = LineHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Python warnings (Celery's, the SDKs') become log lines too, instead of bare stderr text.
    logging.captureWarnings(True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    chatter = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in TASK_CHATTER_LOGGERS:
        logging.getLogger(name).setLevel(chatter)
    # Celery's task logger writes to a handler of its own unless told otherwise.
    logging.getLogger("celery.task").handlers.clear()
    logging.getLogger("celery.task").propagate = True
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bind_context(**fields: Any) -> None:
    """Fields every line logged from here on (in this thread or task) carries."""
    structlog.contextvars.bind_contextvars(**fields)


def clear_context() -> None:
    structlog.contextvars.clear_contextvars()
