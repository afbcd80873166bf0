"""The Celery app, built from Settings.

`celery -A workers.celery_app worker` finds `app` here; it is built on first access (PEP 562
module `__getattr__`), not at import, so importing this module never reads the environment.

Every setting below is chosen for "nothing lost, nothing sent twice". The ledger is the record
of work; the broker only carries ids, and the sweeper (beat) re-queues what the ledger says is
unfinished, so a broker that forgets its queue loses nothing.

- task_acks_late + task_reject_on_worker_lost: a task is acknowledged after it ran, and a
  worker that dies mid-task hands it back instead of dropping it. The ledger's claim (a lease
  with an owner token, renewed by the worker's heartbeat) keeps a re-run from sending twice; an
  expired lease is taken back by the sweeper. An event's start (app/ledger/event_starts.py)
  makes a task the worker died on count as a failed try: an event that kills every worker is
  set aside after EVENT_MAX_TRIES, not handed back for ever.
- worker_prefetch_multiplier=1: a worker reserves no more than it can work on (one per thread),
  so a worker that stops strands little, and a warm shutdown returns the rest to the queue.
- visibility_timeout (Redis): how long an unacknowledged task waits before Redis gives it to
  another worker. It is longer than any retry countdown
  (app.delivery.retry_policy.MAX_DELAY_SECONDS),
  or a countdown task would run twice; it is not how a dead worker's task is recovered (the
  sweeper does that within a lease and a sweep: 25 s at most by default).
- task_time_limit / task_soft_time_limit: a hung call cannot hold a worker thread for ever;
  every provider call has its own timeout (PROVIDER_TIMEOUT_SECONDS) well inside them.
- beat: `sweep` every SWEEP_INTERVAL_SECONDS, `reconcile` every RECONCILE_INTERVAL_SECONDS.
  Each expires after one interval, so a stopped worker does not come back to a pile of them.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.signals import worker_ready

from app.intake.queue import RECONCILE, RELAY_STATUS_WEBHOOKS, SWEEP
from app.settings import Settings, load_settings

if TYPE_CHECKING:
    # Only a worker builds a Context (and with it the Seam, Twilio and SendGrid SDKs); the
    # web process uses this module to publish on the embedded broker and must not carry them.
    import httpx

    from app.context import Context
    from app.outbound.send import StatusHooks

log = logging.getLogger(__name__)

VISIBILITY_TIMEOUT_SECONDS = 2 * 60 * 60
SWITCH_INTERVAL_SECONDS = 0.02
STATE_DIR = Path("var")


class KeycourierCelery(Celery):
    """A Celery app that also owns the worker's long-lived Context: built when the worker is ready
    (`_get_ready`), or on first use if that failed."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("keycourier", broker=settings.broker_url, include=["workers.tasks"])
        self.keycourier_settings = settings
        self._context: Context | None = None
        self._context_lock = threading.Lock()
        self._http: httpx.Client | None = None

    def context(self) -> Context:
        from app.context import Context

        with self._context_lock:
            if self._context is None:
                self._context = Context.from_settings(self.keycourier_settings)
            return self._context

    def status_hooks(self) -> StatusHooks | None:
        """STATUS_WEBHOOK_URL and its secret, as the sender takes them (None: off)."""
        from app.outbound.send import StatusHooks

        return StatusHooks.from_settings(self.keycourier_settings)

    def http(self) -> httpx.Client:
        """The worker's one HTTP client for status webhooks (its connections are kept)."""
        from app.outbound.send import new_client

        with self._context_lock:
            if self._http is None:
                self._http = new_client()
            return self._http


def create_celery_app(settings: Settings) -> KeycourierCelery:
    celery = KeycourierCelery(settings)
    STATE_DIR.mkdir(exist_ok=True)
    transport_options: dict[str, Any] = {}
    beat_schedule: dict[str, Any] = {
        "sweep": {
            "task": SWEEP,
            "schedule": settings.sweep_interval_seconds,
            "options": {"expires": settings.sweep_interval_seconds},
        },
        "reconcile": {
            "task": RECONCILE,
            "schedule": settings.reconcile_interval_seconds,
            "options": {"expires": settings.reconcile_interval_seconds},
        },
    }
    if settings.status_webhooks:
        beat_schedule["status-webhooks"] = {
            "task": RELAY_STATUS_WEBHOOKS,
            "schedule": settings.status_webhook_poll_seconds,
            "options": {"expires": settings.status_webhook_poll_seconds},
        }
    if settings.embedded_broker:
        Path(settings.broker_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        # "sqla+" names kombu's own transport, whatever broker_transport says: ours takes the
        # database URL without it.
        celery.conf.update(
            broker_url=settings.broker_url.removeprefix("sqla+"),
            broker_transport="workers.broker:EmbeddedTransport",
        )
    else:
        if settings.broker_url.startswith("redis://"):
            # rediss:// keeps kombu's own transport: the scheme is what turns TLS on.
            celery.conf.broker_transport = "workers.broker:Transport"
        transport_options.update(
            visibility_timeout=VISIBILITY_TIMEOUT_SECONDS,
            socket_timeout=3,
            socket_connect_timeout=2,
        )
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="keycourier",
        task_time_limit=300,
        task_soft_time_limit=240,
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule=beat_schedule,
        beat_schedule_filename=str(STATE_DIR / "celerybeat-schedule"),
    )
    return celery


@worker_ready.connect
def _get_ready(sender: Any = None, **_: object) -> None:
    """Before the first task (and before the worker's health file and its "ready" line, which
    later receivers of this signal write): build the Context every task uses and warm the
    ledger up (its mappers, hot statements and first connection), then tune the interpreter.
    Built on the first task instead, its ~0.8 s of CPU (the SDKs, the templates read and
    checked) held every task that arrived meanwhile: at 100 events/s a backlog the first
    seconds' guests waited out (bench/RESULTS.md). What fails here (the Context, or a ledger
    that does not answer yet) is tried again by the first task, as before."""
    app = getattr(sender, "app", None)
    if isinstance(app, KeycourierCelery):
        try:
            # Celery finds its result backend (none: "disabled") on a task's first run, reading
            # every installed package's entry points: ~17 ms of CPU, once a process.
            app.backend  # noqa: B018 (the property resolves and keeps it)
            app.context().ledger.warm_up()
        except Exception:
            log.exception("the worker could not get ready ahead; its first task tries again")
    _tune_the_interpreter()


def _tune_the_interpreter() -> None:
    """Start-up objects (Celery, SQLAlchemy, the SDKs) live as long as the worker: freeze them
    out of the collector's way and collect young objects less eagerly. Profiled, full
    collections over that heap were a steady share of a busy worker's CPU.

    Every thread waiting for the GIL wakes each switch interval to ask for it; with dozens of
    threads waiting on Seam and the providers those wake-ups were a measurable cost
    (bench/RESULTS.md: 20 ms instead of 5 ms gave ~7 % more deliveries per second). A thread
    blocked on I/O releases the GIL at once whatever the interval, so no send waits on it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


_built: dict[str, KeycourierCelery] = {}


def __getattr__(name: str) -> KeycourierCelery:
    """Build `app` from the environment the first time the Celery CLI asks for it."""
    if name != "app":
        raise AttributeError(name)
    if "app" not in _built:
        from app.observability.logs import configure_logging
        from workers.hooks import install

        settings = load_settings(require=("SEAM_API_KEY",))
        configure_logging(settings)
        install(settings)
        _built["app"] = create_celery_app(settings)
    return _built["app"]
