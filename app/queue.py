"""Handing work to the broker. Only ids cross the queue: never a credential, never an SDK object."""

from __future__ import annotations

from typing import Protocol

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from app.errors import BrokerUnavailable

PROCESS_EVENT = "keycourier.process_event"
SEND_DELIVERY = "keycourier.send_delivery"
SWEEP = "keycourier.sweep"
RECONCILE = "keycourier.reconcile"

# Fail fast when the broker is down: the webhook answers 503 and Svix retries later. With the
# ledger's 3 s and the broker's 2 s connect timeouts, a dead dependency costs well under the 15 s
# Svix waits for an answer.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


class Enqueuer(Protocol):
    def enqueue_event(self, event_id: int) -> None: ...

    def ping(self) -> None: ...


class CeleryEnqueuer:
    def __init__(self, celery: Celery) -> None:
        self._celery = celery

    def enqueue_event(self, event_id: int) -> None:
        self._publish(PROCESS_EVENT, event_id)

    def enqueue_delivery(self, delivery_id: int) -> None:
        self._publish(SEND_DELIVERY, delivery_id)

    def _publish(self, task_name: str, object_id: int) -> None:
        try:
            self._celery.send_task(
                task_name, args=[object_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except (KombuOperationalError, OSError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def ping(self) -> None:
        try:
            with self._celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except (KombuOperationalError, OSError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
