"""Group commit on the event loop itself, for PostgreSQL and Redis.

The threaded writer (app/intake/ingest.py) works with any ledger, but its Python shares the GIL with
the event loop: under load every socket call the loop makes can wait a switch interval for
the writer, and requests queue behind it. With PostgreSQL and Redis there are asynchronous
drivers, so the batch is written by a task on the loop: one process, one thread, no
contention, and the loop is never blocked longer than it takes to build one batch's rows
(batches are capped so that stays well under a few milliseconds).

Same contract as the threaded writer: a request's future resolves only once its event is
committed and, when it has work to do, pushed to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.errors import BrokerUnavailable, LedgerUnavailable
from app.intake.ingest import settle_futures
from app.intake.queue import QUEUE, process_event_messages
from app.ledger import batch
from app.ledger.batch import NewEvent, QueuePlan, Recorded
from app.ledger.models import utcnow

log = logging.getLogger(__name__)

MAX_BATCH = 32
LANES = 2

UNQUEUE = (
    "UPDATE events SET status = 'received', queued_at = NULL "
    "WHERE id = ANY(%(ids)s) AND status = 'queued'"
)
MARK_QUEUED = (
    "UPDATE events SET status = 'queued', queued_at = now() "
    "WHERE id = ANY(%(ids)s) AND status = 'received'"
)


class AsyncIngestWriter:
    def __init__(self, database_url: str, redis_url: str) -> None:
        dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=3, socket_connect_timeout=2, max_connections=LANES * 2
        )
        # Two lanes, each with its own connection: one batch builds and sends while the
        # other waits for its commit.
        self._lanes = [_Lane(dsn) for _ in range(LANES)]
        self._waiting: list[tuple[NewEvent, asyncio.Future[Recorded]]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(lane)) for lane in self._lanes]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in self._lanes:
            await lane.close()
        await self._redis.aclose()

    async def record(self, event: NewEvent) -> Recorded:
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, future))
        self._wake.set()
        return await future

    async def _run(self, lane: _Lane) -> None:
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            taken, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                outcomes: list[Recorded] | BaseException = await self._write(
                    lane, [event for event, _ in taken]
                )
            except (LedgerUnavailable, BrokerUnavailable) as exc:
                outcomes = exc
            except Exception as exc:
                log.exception("ingest writer failed on a batch of %d", len(taken))
                outcomes = exc
            settle_futures([future for _, future in taken], outcomes)

    async def _write(self, lane: _Lane, news: list[NewEvent]) -> list[Recorded]:
        recorded = await lane.record(news)
        plan = QueuePlan.of(recorded)
        try:
            if plan.to_queue:
                await self._redis.lpush(QUEUE, *process_event_messages(plan.to_queue))
        except (RedisError, OSError) as exc:
            await lane.execute(UNQUEUE, {"ids": plan.stored_queued})
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
        await lane.execute(MARK_QUEUED, {"ids": plan.retried})
        return recorded


class _Lane:
    """One PostgreSQL connection, reopened after a failure. It runs each statement as its own
    transaction (autocommit): psycopg sends BEGIN and COMMIT as round trips of their own, so a
    lone webhook's batch cost three round trips where one does."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def record(self, news: list[NewEvent]) -> list[Recorded]:
        rows = batch.event_rows(news, as_queued=True, now=utcnow())
        connection = await self._connect()
        try:
            # The INSERT is the batch's transaction: committed when it returns, so "2xx means
            # recorded" holds. The duplicates' rows, when there are any, are read after it;
            # a conflicting row another writer was inserting is committed by then (ON
            # CONFLICT waited for it), as it was for a second statement in one transaction.
            cursor = await connection.execute(batch.PG_INSERT_PSYCOPG, batch.as_json(rows))
            inserted = await cursor.fetchall()
            existing: list[tuple[object, ...]] = []
            if len(inserted) < len(news):
                cursor = await connection.execute(
                    batch.EXISTING_PSYCOPG, batch.existing_params(news)
                )
                existing = await cursor.fetchall()
        except psycopg.OperationalError as exc:
            await self.close()
            raise LedgerUnavailable(f"ledger unavailable: {type(exc).__name__}") from exc
        return batch.match(news, rows, inserted, existing)

    async def execute(self, sql: str, params: dict[str, list[int]]) -> None:
        if not params["ids"]:
            return
        connection = await self._connect()
        try:
            await connection.execute(sql, params)
        except psycopg.OperationalError as exc:
            await self.close()
            raise LedgerUnavailable(f"ledger unavailable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                await self._connection.close()
            self._connection = None

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            try:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._dsn, connect_timeout=3, autocommit=True
                )
            except psycopg.OperationalError as exc:
                raise LedgerUnavailable(f"ledger unavailable: {type(exc).__name__}") from exc
        return self._connection
