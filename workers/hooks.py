"""What a worker process does beside running tasks: its logs, context, health file and metrics.

Connected to Celery's signals when the worker's Celery app is built (workers/celery_app.py).
They are the worker process's own wiring, so they live beside the Celery app, not in
app/observability (whose logs, metrics and error reports they use):

- setup_logging: Celery leaves logging to keycourier (app/observability/logs.py), so its own
  lines, the task logger's included, go through the same redaction and JSON as everything else.
- task_prerun / task_postrun: every line logged while a task runs carries its task id and the
  event id or delivery id it works on; nothing carries over to the thread's next task.
- heartbeat_sent: once ready, the worker touches WORKER_HEARTBEAT_FILE every heartbeat (2 s),
  so the file first appears when it can take tasks at full speed. Heartbeats
  are sent by the worker's consumer loop over the broker connection, so a fresh file means the
  loop is turning and connected; `keycourier worker-health` (the Kubernetes liveness probe)
  fails when the file is stale.
- worker_ready: the worker logs how it is set up in one line (app/observability/startup.py:
  channels live or dry run, ledger, broker; no secret), and serves /metrics on
  WORKER_METRICS_PORT, when set.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from celery import signals
from prometheus_client import start_http_server

from app.intake.queue import PROCESS_EVENT, SEND_DELIVERY
from app.observability import metrics
from app.observability.error_reports import init_error_reports
from app.observability.logs import bind_context, clear_context, configure_logging
from app.observability.startup import log_summary
from app.settings import Settings

log = logging.getLogger(__name__)

# Which argument of which task names what it works on.
TASK_SUBJECTS = {PROCESS_EVENT: "event_id", SEND_DELIVERY: "delivery_id"}


def install(settings: Settings) -> None:
    """Connect the worker's signal handlers and start error reporting."""
    heartbeat_file = settings.heartbeat_file

    def setup_logging(**kwargs: Any) -> None:
        configure_logging(settings)

    def before_task(task_id: str, task: Any, args: Any = (), **kwargs: Any) -> None:
        clear_context()
        metrics.task_finished()
        context: dict[str, object] = {"task_id": task_id, "task": task.name}
        subject = TASK_SUBJECTS.get(task.name)
        if subject is not None and args:
            context[subject] = args[0]
        bind_context(**context)

    def after_task(**kwargs: Any) -> None:
        clear_context()
        metrics.task_finished()

    # Celery sends its first heartbeats before the worker is ready (workers/celery_app.py builds
    # what tasks use first): the file appears once it is, and is kept fresh from then on.
    is_ready = threading.Event()

    def heartbeat(**kwargs: Any) -> None:
        if is_ready.is_set():
            touch(heartbeat_file)

    def ready(**kwargs: Any) -> None:
        is_ready.set()
        touch(heartbeat_file)
        log_summary(settings, "worker")
        if settings.worker_metrics_port is not None:
            start_http_server(settings.worker_metrics_port)
            log.info("worker metrics on port %d", settings.worker_metrics_port)

    signals.setup_logging.connect(setup_logging, weak=False)
    signals.task_prerun.connect(before_task, weak=False)
    signals.task_postrun.connect(after_task, weak=False)
    signals.heartbeat_sent.connect(heartbeat, weak=False)
    signals.worker_ready.connect(ready, weak=False)
    init_error_reports(settings)


def touch(path: Path) -> None:
    try:
        path.touch()
    except OSError as exc:
        log.warning("cannot touch the heartbeat file %s: %s", path, exc)
