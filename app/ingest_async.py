"""Group commit on the event loop itself, for PostgreSQL and Redis.

The threaded writer (app/ingest.py) works with any ledger, but its Python shares the GIL with
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
import os
import socket

import psycopg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.errors import BrokerUnavailable, LedgerUnavailable
from app.ledger import batch
from app.ledger.batch import NewEvent, Recorded
from app.ledger.models import utcnow
from app.queue import PROCESS_EVENT, QUEUE, celery_message

log = logging.getLogger(__name__)

MAX_BATCH = 32

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
        self._dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=3, socket_connect_timeout=2, max_connections=4
        )
        self._origin = f"{os.getpid()}@{socket.gethostname()}".replace('"', "")
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._waiting: list[tuple[NewEvent, asyncio.Future[Recorded]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()
        await self._redis.aclose()

    async def record(self, event: NewEvent) -> Recorded:
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                taken, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                try:
                    outcomes: list[Recorded] | BaseException = await self._write(
                        [event for event, _ in taken]
                    )
                except (LedgerUnavailable, BrokerUnavailable) as exc:
                    outcomes = exc
                except Exception as exc:
                    log.exception("ingest writer failed on a batch of %d", len(taken))
                    outcomes = exc
                for n, (_, future) in enumerate(taken):
                    if future.done():
                        continue
                    if isinstance(outcomes, BaseException):
                        future.set_exception(outcomes)
                    else:
                        future.set_result(outcomes[n])

    async def _write(self, news: list[NewEvent]) -> list[Recorded]:
        recorded = await self._record(news)
        to_queue = sorted({r.event_id for r in recorded if r.needs_enqueue})
        stored_queued = sorted(
            {r.event_id for r in recorded if r.needs_enqueue and not r.duplicate}
        )
        try:
            if to_queue:
                await self._redis.lpush(
                    QUEUE, *[celery_message(PROCESS_EVENT, [i], self._origin) for i in to_queue]
                )
        except (RedisError, OSError) as exc:
            await self._execute(UNQUEUE, {"ids": stored_queued})
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
        # Duplicates of events whose first publish failed were stored as received.
        retried = sorted({r.event_id for r in recorded if r.needs_enqueue and r.duplicate})
        if retried:
            await self._execute(MARK_QUEUED, {"ids": retried})
        return recorded

    async def _record(self, news: list[NewEvent]) -> list[Recorded]:
        rows = batch.event_rows(news, as_queued=True, now=utcnow())
        connection = await self._connect()
        try:
            async with connection.transaction():
                cursor = await connection.execute(batch.PG_INSERT_PSYCOPG, batch.as_arrays(rows))
                inserted = await cursor.fetchall()
                existing: list[tuple[object, ...]] = []
                if len(inserted) < len(news):
                    cursor = await connection.execute(
                        batch.EXISTING_PSYCOPG, batch.existing_params(news)
                    )
                    existing = await cursor.fetchall()
        except psycopg.OperationalError as exc:
            await self._drop_connection()
            raise LedgerUnavailable(f"ledger unavailable: {type(exc).__name__}") from exc
        return batch.match(news, rows, inserted, existing)

    async def _execute(self, sql: str, params: dict[str, list[int]]) -> None:
        if not params["ids"]:
            return
        connection = await self._connect()
        try:
            await connection.execute(sql, params)
            await connection.commit()
        except psycopg.OperationalError as exc:
            await self._drop_connection()
            raise LedgerUnavailable(f"ledger unavailable: {type(exc).__name__}") from exc

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            try:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._dsn, connect_timeout=3
                )
            except psycopg.OperationalError as exc:
                raise LedgerUnavailable(f"ledger unavailable: {type(exc).__name__}") from exc
        return self._connection

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                await self._connection.close()
            self._connection = None
