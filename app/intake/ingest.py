"""Group commit for incoming webhooks: many requests, one transaction, one broker round trip.

Each request hands its event to a single writer thread and waits. The writer takes every event
waiting at that moment, inserts them in one statement, commits, queues the new ones with one
pipelined push, marks them queued, and only then releases the requests: "2xx means recorded"
still holds, but a burst of requests costs one commit instead of one each. A lone request is
written at once (there is no timer to wait for), so at low load it costs what it always did.

The event loop only ever puts to a queue and awaits a future: the database and the broker are
touched by the writer thread alone.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.errors import BrokerUnavailable, LedgerUnavailable
from app.intake.queue import Enqueuer
from app.ledger.batch import QueuePlan
from app.ledger.store import Ledger, NewEvent, Recorded

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass(frozen=True)
class _Waiting:
    event: NewEvent
    future: asyncio.Future[Recorded]
    loop: asyncio.AbstractEventLoop


class EventWriter(Protocol):
    """What the webhook endpoint needs: record an event, or raise why it could not."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def record(self, event: NewEvent) -> Recorded: ...


class IngestWriter:
    def __init__(self, ledger: Ledger, enqueuer: Enqueuer) -> None:
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._waiting: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._thread is not None:
            self._waiting.put(None)
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    async def record(self, event: NewEvent) -> Recorded:
        """Record (and queue, when it has work) one event; raises LedgerUnavailable or
        BrokerUnavailable when it could not be done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        self._waiting.put(_Waiting(event, future, loop))
        return await future

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._waiting.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._write(batch)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            recorded = self._ledger.record_events([w.event for w in batch], as_queued=True)
            plan = QueuePlan.of(recorded)
            try:
                self._enqueuer.enqueue_events(plan.to_queue)
            except BrokerUnavailable:
                self._ledger.unqueue_events(plan.stored_queued)
                raise
            self._ledger.mark_events_queued(plan.retried)
        except (LedgerUnavailable, BrokerUnavailable) as exc:
            _settle(batch, exc)
            return
        except Exception as exc:
            log.exception("ingest writer failed on a batch of %d", len(batch))
            _settle(batch, exc)
            return
        if len(batch) > 1:
            log.debug("recorded %d webhooks in one commit", len(batch))
        _settle(batch, recorded)


def _settle(batch: list[_Waiting], outcomes: list[Recorded] | BaseException) -> None:
    """Release a batch's requests with one wake-up of their event loop, not one each."""
    by_loop: dict[asyncio.AbstractEventLoop, list[int]] = {}
    for n, waiting in enumerate(batch):
        by_loop.setdefault(waiting.loop, []).append(n)
    for loop, indexes in by_loop.items():
        futures = [batch[n].future for n in indexes]
        chosen = outcomes if isinstance(outcomes, BaseException) else [outcomes[n] for n in indexes]
        loop.call_soon_threadsafe(settle_futures, futures, chosen)


def settle_futures(
    futures: Sequence[asyncio.Future[Recorded]], outcomes: Sequence[Recorded] | BaseException
) -> None:
    """Give each waiting request its Recorded, or the batch's error. Call on their loop."""
    for n, future in enumerate(futures):
        if future.done():  # the request went away (client disconnected)
            continue
        if isinstance(outcomes, BaseException):
            future.set_exception(outcomes)
        else:
            future.set_result(outcomes[n])
