"""Thin tasks: load by id, call one `app` function, map errors to retry or fail."""

from __future__ import annotations

import random
from typing import cast

from celery import Task, shared_task

from app import delivery, processing
from app.container import Services
from app.errors import KeycourierError, ProviderError
from app.queue import PROCESS_EVENT, SEND_DELIVERY, CeleryEnqueuer
from workers.celery_app import MAX_COUNTDOWN_SECONDS, KeycourierCelery

MAX_RETRIES = 12


def backoff(retries: int, exc: Exception) -> float:
    """Exponential backoff with jitter, honouring a provider's own retry hint."""
    delay: float = min(MAX_COUNTDOWN_SECONDS, 5 * 2**retries) * random.uniform(0.8, 1.2)  # noqa: S311
    hint = exc.retry_after if isinstance(exc, ProviderError) else None
    return float(min(MAX_COUNTDOWN_SECONDS, max(delay, hint or 0.0)))


def _services(task: Task[..., object]) -> Services:
    return cast(KeycourierCelery, task.app).services()


@shared_task(bind=True, name=PROCESS_EVENT, max_retries=MAX_RETRIES)
def process_event(self: Task[[int], str], event_id: int) -> str:
    try:
        enqueuer = CeleryEnqueuer(self.app)
        outcome = processing.process_event(
            _services(self), event_id, enqueue_send=enqueuer.enqueue_delivery
        )
    except KeycourierError as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, exc)) from exc
    return outcome.status.value


@shared_task(bind=True, name=SEND_DELIVERY, max_retries=MAX_RETRIES)
def send_delivery(self: Task[[int], str], delivery_id: int) -> str:
    try:
        result = delivery.send_delivery(_services(self), delivery_id)
    except KeycourierError as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, exc)) from exc
    return result.value
