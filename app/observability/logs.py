"""Logging: one JSON object per line (structlog over the standard library), redacted.

keycourier's modules keep calling `logging.getLogger(__name__)`; Celery, uvicorn and the SDKs
log through the standard library too. Every record reaches the root handler, whose structlog
`ProcessorFormatter` adds the context (event id, delivery id, task id: from the record's
`extra=` or bound per task by the worker), renders any traceback, runs the redaction step
(app/observability/redaction.py) over every field, and writes JSON (or `key=value` text with
LOG_FORMAT=console).

The worker (`queued=True`) formats each line in the thread that logs it (its context is that
thread's) but writes it from one writer thread: a task thread never waits on the stream, nor
on another thread writing to it. Lines keep the order they were logged in; the writer is
drained when the process exits (atexit) or logging is configured again.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
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


_writer: list[logging.handlers.QueueListener] = []


def stop_writer() -> None:
    """Write out every line queued (the worker's exit; configuring logging again)."""
    while _writer:
        _writer.pop().stop()


atexit.register(stop_writer)


def _queued(formatter: logging.Formatter, stream: TextIO) -> logging.Handler:
    """A handler that formats (and so redacts) in the logging thread, and writes from one
    writer thread: QueueHandler.prepare leaves only the finished line on the record."""
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.handlers.QueueHandler(lines)
    handler.setFormatter(formatter)
    out = logging.StreamHandler(stream)
    out.setFormatter(logging.Formatter("%(message)s"))
    listener = logging.handlers.QueueListener(lines, out)
    listener.start()
    _writer.append(listener)
    return handler


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, queued: bool = False
) -> None:
    """Send every record, from any library, through redaction to `stream` (stderr); with
    `queued`, written from a writer thread (see the module's docstring)."""
    stop_writer()
    hide_configured_secrets(settings)
    shared, final = _processors(settings.log_format)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(allow=CONTEXT_FIELDS)],
        processors=final,
    )
    handler: logging.Handler
    if queued:
        handler = _queued(formatter, stream or sys.stderr)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # Python warnings (Celery's, the SDKs') become log lines too, instead of bare stderr text.
    logging.captureWarnings(True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
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
