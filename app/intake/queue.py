"""Handing work to the broker. Only ids cross the queue: never a credential, never an SDK object.

Two ways in, one format out:
- `RedisEnqueuer` writes Celery's own message format straight to the Redis list the workers
  read, many messages in one round trip. The web process uses it: a Celery publish costs
  ~0.5-1 ms of CPU (argument repr, a client per publish), a pipelined LPUSH microseconds.
- `CeleryEnqueuer` publishes through Celery, for the embedded broker and the workers.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import redis

if TYPE_CHECKING:
    # The web process with Redis writes Celery's format itself and must not load Celery and
    # kombu (~15 MB resident): CeleryEnqueuer imports what it needs when it is built.
    from celery import Celery

from app.errors import BrokerUnavailable
from app.ledger.store import Ledger
from app.ports import Queued, Work

PROCESS_EVENT = "keycourier.process_event"
SEND_DELIVERY = "keycourier.send_delivery"
SWEEP = "keycourier.sweep"
RECONCILE = "keycourier.reconcile"
# A provider reported a sent message undelivered: plan its fallback (app/delivery/undelivered.py).
AFTER_UNDELIVERED = "keycourier.after_undelivered"
# Status webhooks to the PMS (app/outbound): beat's relay, and one send per webhook.
RELAY_STATUS_WEBHOOKS = "keycourier.relay_status_webhooks"
SEND_STATUS_WEBHOOK = "keycourier.send_status_webhook"
QUEUE = "keycourier"
TASKS = {
    Work.PROCESS_EVENT: PROCESS_EVENT,
    Work.SEND_DELIVERY: SEND_DELIVERY,
    Work.AFTER_UNDELIVERED: AFTER_UNDELIVERED,
    Work.SEND_STATUS_WEBHOOK: SEND_STATUS_WEBHOOK,
}
# The work whose id is a delivery's (the ledger notes when each was handed on).
_DELIVERY_WORK = (Work.SEND_DELIVERY, Work.AFTER_UNDELIVERED)
# Work queued for later arrives a little after the ledger says it is due, so it never arrives
# a hair early (and finds nothing to claim); the sweeper would catch it, but a minute later.
DUE_MARGIN_SECONDS = 1.0

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
    def enqueue_events(self, event_ids: Sequence[int]) -> None:
        """Hand recorded events to the workers' process task (the webhook's batch)."""
        ...

    def enqueue(self, work: Sequence[Queued]) -> None:
        """Hand each piece of work to its task, after its countdown (seconds) if it has one."""
        ...

    def ping(self) -> None: ...


def hand_on(enqueuer: Enqueuer, ledger: Ledger, work: Sequence[Queued]) -> None:
    """Queue what a domain call returned, and note in the ledger the deliveries handed on now:
    the sweeper gives those its patience before handing them on again."""
    if not work:
        return
    enqueuer.enqueue(work)
    now = [q.id for q in work if q.work in _DELIVERY_WORK and q.countdown is None]
    if now:
        ledger.mark_deliveries_enqueued(now)


class CeleryEnqueuer:
    def __init__(self, celery: Celery) -> None:
        from kombu.exceptions import OperationalError

        self._celery = celery
        self._unavailable = (OperationalError, OSError)

    def enqueue_events(self, event_ids: Sequence[int]) -> None:
        for event_id in event_ids:
            self._publish(PROCESS_EVENT, event_id)

    def enqueue(self, work: Sequence[Queued]) -> None:
        for queued in work:
            countdown = queued.countdown
            if countdown is not None:
                countdown += DUE_MARGIN_SECONDS
            self._publish(TASKS[queued.work], queued.id, countdown)

    def _publish(self, task_name: str, object_id: int, countdown: float | None = None) -> None:
        try:
            self._celery.send_task(
                task_name,
                args=[object_id],
                countdown=countdown,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except self._unavailable as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def ping(self) -> None:
        try:
            with self._celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except self._unavailable as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc


class RedisEnqueuer:
    """Celery task messages written straight to Redis, one LPUSH for a whole batch."""

    def __init__(self, redis_url: str, *, max_connections: int = 8) -> None:
        # A blocking pool: past its size a caller waits (briefly) instead of failing.
        self._redis = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=max_connections,
                timeout=2,
                socket_timeout=3,
                socket_connect_timeout=2,
            )
        )

    def enqueue_events(self, event_ids: Sequence[int]) -> None:
        if not event_ids:
            return
        try:
            self._redis.lpush(QUEUE, *process_event_messages(event_ids))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def enqueue(self, work: Sequence[Queued]) -> None:
        """Work for now only: the web side never queues for later (a countdown needs Celery's
        eta handling; the workers' CeleryEnqueuer has it)."""
        if any(queued.countdown is not None for queued in work):
            raise ValueError("RedisEnqueuer queues work for now only")
        origin = json.dumps(f"{os.getpid()}@{socket.gethostname()}")[1:-1]
        messages = [celery_message(TASKS[q.work], [q.id], origin) for q in work]
        if not messages:
            return
        try:
            self._redis.lpush(QUEUE, *messages)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def ping(self) -> None:
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc


def process_event_messages(event_ids: Sequence[int]) -> list[bytes]:
    """One `process_event` task message per event, for a single LPUSH."""
    # Escaped here: the message template takes it as it is.
    origin = json.dumps(f"{os.getpid()}@{socket.gethostname()}")[1:-1]
    return [celery_message(PROCESS_EVENT, [event_id], origin) for event_id in event_ids]


def celery_message(task_name: str, args: list[int], origin: str) -> bytes:
    """A task message exactly as Celery (protocol 2) and kombu's Redis transport write it.

    Built from a template: at webhook rates, serialising the whole envelope per message
    cost more than everything else the writer does for an event.
    """
    task_id = uuid4_text()
    args_json = json.dumps(args)
    body = base64.b64encode(f"[{args_json}, {{}}, {_BODY_EMBED}]".encode()).decode()
    return _MESSAGE_TEMPLATE.format(
        body=body,
        task=task_name,
        task_id=task_id,
        argsrepr=args_json,
        origin=origin,
        delivery_tag=uuid4_text(),
    ).encode()


def uuid4_text() -> str:
    """`str(uuid.uuid4())`, made without a UUID object: the same random version-4 id (RFC
    9562: 122 random bits, version and variant set) in a quarter of the time. Two per
    message, on the event loop: with uuid.uuid4 they were most of a batch's message cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10xx
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_BODY_EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'
_MESSAGE_TEMPLATE = (
    '{{"body": "{body}", "content-encoding": "utf-8", "content-type": "application/json", '
    '"headers": {{"lang": "py", "task": "{task}", "id": "{task_id}", "shadow": null, '
    '"eta": null, "expires": null, "group": null, "group_index": null, "retries": 0, '
    '"timelimit": [null, null], "root_id": "{task_id}", "parent_id": null, '
    '"argsrepr": "{argsrepr}", "kwargsrepr": "{{}}", "origin": "{origin}", '
    '"ignore_result": null, "replaced_task_nesting": 0, "stamped_headers": null, '
    '"stamps": {{}}}}, '
    '"properties": {{"correlation_id": "{task_id}", "reply_to": "", "delivery_mode": 2, '
    '"delivery_info": {{"exchange": "", "routing_key": "'
    + QUEUE
    + '"}}, "priority": 0, "body_encoding": "base64", "delivery_tag": "{delivery_tag}"}}}}'
)
