"""The Celery app, built from Settings.

`celery -A workers.celery_app worker` finds `app` here; it is built on first access (PEP 562
module `__getattr__`), not at import, so importing this module never reads the environment.

Every setting below is chosen for "nothing lost, nothing sent twice":
- task_acks_late + task_reject_on_worker_lost: a task is acknowledged only after it ran, and a
  worker killed mid-task hands it back instead of dropping it; the ledger's claim on a delivery
  keeps a re-run from sending twice.
- worker_prefetch_multiplier=1: a worker holds no more than it is working on, so a dying worker
  strands at most its running tasks.
- visibility_timeout (Redis): how long an unacknowledged task waits before Redis hands it to
  another worker. It must exceed the longest countdown a retry uses (MAX_COUNTDOWN_SECONDS),
  or a countdown task would run twice.
- time limits: a hung provider call cannot hold a worker thread for ever.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from celery import Celery

from app.container import Services
from app.settings import Settings, load_settings

MAX_COUNTDOWN_SECONDS = 15 * 60
VISIBILITY_TIMEOUT_SECONDS = 2 * 60 * 60


class KeycourierCelery(Celery):
    """A Celery app that also owns the worker's long-lived Services, built on first use."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("keycourier", broker=settings.broker_url, include=["workers.tasks"])
        self.keycourier_settings = settings
        self._services: Services | None = None
        self._services_lock = threading.Lock()

    def services(self) -> Services:
        with self._services_lock:
            if self._services is None:
                self._services = Services.from_settings(self.keycourier_settings)
            return self._services


def create_celery_app(settings: Settings) -> KeycourierCelery:
    celery = KeycourierCelery(settings)
    transport_options: dict[str, Any] = {}
    if settings.embedded_broker:
        Path(settings.broker_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    else:
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
    )
    return celery


_built: dict[str, KeycourierCelery] = {}


def __getattr__(name: str) -> KeycourierCelery:
    """Build `app` from the environment the first time the Celery CLI asks for it."""
    if name != "app":
        raise AttributeError(name)
    if "app" not in _built:
        from app.logs import configure_logging

        settings = load_settings(require=("SEAM_API_KEY",))
        configure_logging(settings)
        _built["app"] = create_celery_app(settings)
    return _built["app"]
