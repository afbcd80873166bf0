"""Thin tasks: load by id, call one `app` function, queue what it returns, map errors to retry.

Only ids cross the queue. No task hands the domain a callback: each domain call returns the
work that follows it (`app.ports.Queued`), and the task queues it (`app.intake.queue.hand_on`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import cast

from celery import Task, shared_task

from app.context import Context
from app.delivery.retry_policy import backoff_seconds
from app.delivery.send import send_delivery as send
from app.delivery.undelivered import after_undelivered as plan_after_undelivered
from app.errors import KeycourierError, ProviderError
from app.events.tries import handle_event
from app.intake.queue import (
    AFTER_UNDELIVERED,
    DUE_MARGIN_SECONDS,
    PROCESS_EVENT,
    RECONCILE,
    RELAY_STATUS_WEBHOOKS,
    SEND_DELIVERY,
    SEND_STATUS_WEBHOOK,
    SWEEP,
    CeleryEnqueuer,
    hand_on,
)
from app.intake.reconcile import reconcile_all
from app.intake.sweeper import patience_for
from app.intake.sweeper import sweep as sweep_ledger
from app.ledger.models import utcnow
from app.outbound.relay import owed_now
from app.outbound.send import send_status_webhook as post_status_webhook
from app.ports import Queued, Work
from workers.celery_app import KeycourierCelery


def _app(task: Task[..., object]) -> KeycourierCelery:
    return cast(KeycourierCelery, task.app)


def _context(task: Task[..., object]) -> Context:
    return _app(task).context()


def _queue(task: Task[..., object], work: Sequence[Queued]) -> None:
    hand_on(CeleryEnqueuer(task.app), _context(task).ledger, work)


def _retry_in(task: Task[..., object], exc: KeycourierError) -> float:
    hint = exc.retry_after if isinstance(exc, ProviderError) else None
    return backoff_seconds(task.request.retries + 1, hint)


@shared_task(bind=True, name=PROCESS_EVENT)
def process_event(self: Task[[int], str], event_id: int) -> str:
    # No Celery retry: the sweeper retries unfinished events from the ledger. Duplicates of
    # this task are harmless, but duplicated retry chains would multiply.
    outcome = handle_event(_context(self), event_id)
    _queue(self, outcome.next)
    return outcome.status.value


@shared_task(bind=True, name=SEND_DELIVERY, max_retries=None)
def send_delivery(self: Task[[int], str], delivery_id: int) -> str:
    # No max_retries: the ledger bounds a delivery's retries (RETRY_WINDOW_SECONDS).
    try:
        outcome = send(_context(self), delivery_id)
    except KeycourierError as exc:
        raise self.retry(exc=exc, countdown=_retry_in(self, exc)) from exc
    _queue(self, outcome.next)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in + DUE_MARGIN_SECONDS)
    return outcome.result.value


@shared_task(bind=True, name=AFTER_UNDELIVERED)
def after_undelivered(self: Task[[int], str], delivery_id: int) -> str:
    # No Celery retry: until it is planned the fallback stays due in the ledger, and the
    # sweeper hands it on again (duplicated retry chains would only multiply).
    try:
        planned = plan_after_undelivered(_context(self), delivery_id)
    except KeycourierError:
        return "retry"
    if planned is None:
        return "nothing to do"
    _queue(self, planned)
    return "planned"


@shared_task(bind=True, name=SWEEP, ignore_result=True)
def sweep(self: Task[[], str]) -> str:
    swept = sweep_ledger(
        _context(self).ledger,
        CeleryEnqueuer(self.app),
        patience=patience_for(_app(self).keycourier_settings),
    )
    return (
        f"{swept.events} events, {swept.deliveries} deliveries, {swept.recovered} recovered, "
        f"{swept.expired} expired, {swept.undelivered} undelivered"
    )


@shared_task(bind=True, name=RELAY_STATUS_WEBHOOKS, ignore_result=True)
def relay_status_webhooks(self: Task[[], str]) -> str:
    owed = owed_now(_context(self).ledger)
    _queue(self, [Queued(Work.SEND_STATUS_WEBHOOK, webhook_id) for webhook_id in owed])
    return f"{len(owed)} status webhooks handed on"


@shared_task(bind=True, name=SEND_STATUS_WEBHOOK, ignore_result=True)
def send_status_webhook(self: Task[[int], str], webhook_id: int) -> str:
    # No Celery retry: the ledger keeps its next try's time, and the relay hands it on then.
    hooks = _app(self).status_hooks()
    if hooks is None:
        return "status webhooks are off"
    try:
        state = post_status_webhook(_context(self).ledger, hooks, _app(self).http(), webhook_id)
    except KeycourierError:
        return "retry"  # the ledger was unreachable: its lease runs out, the relay hands it on
    return "not ours" if state is None else state.value


@shared_task(bind=True, name=RECONCILE, ignore_result=True)
def reconcile(self: Task[[], str]) -> str:
    context = _context(self)
    lookback = timedelta(hours=_app(self).keycourier_settings.reconcile_lookback_hours)
    found = reconcile_all(
        context.ledger, context.seam.each(), CeleryEnqueuer(self.app), utcnow() - lookback
    )
    return f"{found.recorded} of {found.listed} events were new"
