"""Thin tasks: load by id, call one `app` function, map the outcome to retry or done."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from celery import Task, shared_task

from app.container import Services
from app.delivery import send as delivery
from app.delivery import undelivered
from app.delivery.compose import SeamState
from app.delivery.retry_policy import backoff_seconds
from app.errors import KeycourierError, ProviderError
from app.events import processing
from app.intake.queue import (
    AFTER_UNDELIVERED,
    PROCESS_EVENT,
    RECONCILE,
    SEND_DELIVERY,
    SWEEP,
    CeleryEnqueuer,
)
from app.intake.reconcile import reconcile as reconcile_events
from app.intake.sweeper import patience_for
from app.intake.sweeper import sweep as sweep_ledger
from app.ledger.models import utcnow
from app.ledger.store import Claimed
from workers.celery_app import KeycourierCelery

DUE_MARGIN_SECONDS = 1.0


def _services(task: Task[..., object]) -> Services:
    return cast(KeycourierCelery, task.app).services()


def _retry_in(task: Task[..., object], exc: KeycourierError) -> float:
    hint = exc.retry_after if isinstance(exc, ProviderError) else None
    return backoff_seconds(task.request.retries + 1, hint)


@shared_task(bind=True, name=PROCESS_EVENT)
def process_event(self: Task[[int], str], event_id: int) -> str:
    # No Celery retry: the sweeper retries unfinished events from the ledger. Duplicates of
    # this task are harmless, but duplicated retry chains would multiply.
    services = _services(self)
    enqueuer = CeleryEnqueuer(self.app)

    def send_now(delivery_id: int, state: SeamState, claimed: Claimed | None) -> None:
        # Planned a moment ago: send it here, with the Seam state just read, instead of
        # queueing it to be read again. What cannot go now is queued for its retry.
        try:
            sent = delivery.send_delivery(
                services, delivery_id, enqueuer.enqueue_delivery, state, claimed
            )
        except KeycourierError:
            enqueuer.enqueue_delivery(delivery_id)
            return
        if sent.retry_in is not None:
            enqueuer.enqueue_delivery(delivery_id, countdown=sent.retry_in + DUE_MARGIN_SECONDS)

    try:
        outcome = processing.process_event(
            services, event_id, enqueue_send=enqueuer.enqueue_delivery, send_now=send_now
        )
    except KeycourierError as exc:
        return processing.retry_later(services, event_id, exc)
    return outcome.status.value


@shared_task(bind=True, name=SEND_DELIVERY, max_retries=None)
def send_delivery(self: Task[[int], str], delivery_id: int) -> str:
    # No max_retries: the ledger bounds a delivery's retries (RETRY_WINDOW_SECONDS).
    try:
        outcome = delivery.send_delivery(
            _services(self), delivery_id, enqueue=CeleryEnqueuer(self.app).enqueue_delivery
        )
    except KeycourierError as exc:
        raise self.retry(exc=exc, countdown=_retry_in(self, exc)) from exc
    if outcome.retry_in is not None:
        # A little after the ledger says it is due, so the retry never arrives a hair early
        # (and finds nothing to claim); the sweeper would catch it, but a minute later.
        raise self.retry(countdown=outcome.retry_in + DUE_MARGIN_SECONDS)
    return outcome.result.value


@shared_task(bind=True, name=AFTER_UNDELIVERED)
def after_undelivered(self: Task[[int], str], delivery_id: int) -> str:
    # No Celery retry: until it is planned the fallback stays due in the ledger, and the
    # sweeper hands it on again (duplicated retry chains would only multiply).
    try:
        planned = undelivered.after_undelivered(
            _services(self), delivery_id, CeleryEnqueuer(self.app).enqueue_delivery
        )
    except KeycourierError:
        return "retry"
    return "planned" if planned else "nothing to do"


@shared_task(bind=True, name=SWEEP, ignore_result=True)
def sweep(self: Task[[], str]) -> str:
    services = _services(self)
    enqueuer = CeleryEnqueuer(self.app)
    swept = sweep_ledger(
        services.ledger,
        enqueuer.enqueue_event,
        enqueuer.enqueue_delivery,
        patience=patience_for(services.settings),
        enqueue_after_undelivered=enqueuer.enqueue_after_undelivered,
    )
    return (
        f"{swept.events} events, {swept.deliveries} deliveries, {swept.recovered} recovered, "
        f"{swept.expired} expired, {swept.undelivered} undelivered"
    )


@shared_task(bind=True, name=RECONCILE, ignore_result=True)
def reconcile(self: Task[[], str]) -> str:
    services = _services(self)
    since = utcnow() - timedelta(hours=services.settings.reconcile_lookback_hours)
    found = reconcile_events(
        services.ledger, services.seam, CeleryEnqueuer(self.app).enqueue_event, since
    )
    return f"{found.recorded} of {found.listed} events were new"
