"""Group commit of incoming webhooks: many at once, each recorded and queued exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from app.errors import BrokerUnavailable
from app.intake.ingest import IngestWriter
from app.intake.ingest_async import AsyncIngestWriter
from app.intake.queue import QUEUE, RedisEnqueuer
from app.ledger.models import EventStatus
from app.ledger.store import Ledger, NewEvent, Recorded


def event(n: int, svix: str | None = None, **changes: object) -> NewEvent:
    fields: dict[str, object] = {
        "svix_id": svix or f"msg_{n}",
        "seam_event_id": f"event-{n}",
        "event_type": "access_method.issued",
        "access_method_id": "am-1",
    }
    fields.update(changes)
    return NewEvent(**fields)  # type: ignore[arg-type]


def test_one_batch_sorts_new_from_duplicate(ledger: Ledger) -> None:
    """In one statement: new events, repeats inside the batch and of older rows, all told apart."""
    [older] = ledger.record_events([event(0)], as_queued=False)
    results = ledger.record_events(
        [
            event(1),
            event(1),  # the same svix-id again, in the same batch
            event(1, svix="msg_other"),  # the same Seam event under another svix-id
            event(0),  # recorded by an earlier batch
            event(2, seam_event_id=None, event_type=None, status=EventStatus.REJECTED),
        ],
        as_queued=True,
    )

    first, again, other_svix, old, rejected = results
    assert (first.duplicate, first.status, first.needs_enqueue) == (False, EventStatus.QUEUED, True)
    assert (again.duplicate, again.event_id) == (True, first.event_id)
    assert (other_svix.duplicate, other_svix.event_id) == (True, first.event_id)
    assert (old.duplicate, old.event_id) == (True, older.event_id)
    assert old.needs_enqueue  # recorded, never queued: this time it must be
    assert (rejected.duplicate, rejected.status, rejected.needs_enqueue) == (
        False,
        EventStatus.REJECTED,
        False,
    )


def test_concurrent_webhooks_are_each_queued_once(ledger: Ledger, redis_url: str) -> None:
    """300 concurrent requests for 100 events (each sent 3 times): 100 rows, 100 messages."""
    writer = IngestWriter(ledger, RedisEnqueuer(redis_url))

    async def burst() -> list[bool]:
        writer.start()
        try:
            requests = [writer.record(event(n)) for n in range(100) for _ in range(3)]
            return [result.duplicate for result in await asyncio.gather(*requests)]
        finally:
            await writer.stop()

    duplicates = asyncio.run(burst())

    assert duplicates.count(False) == 100
    assert duplicates.count(True) == 200
    assert redis.Redis.from_url(redis_url).llen(QUEUE) == 100


def test_async_writer_queues_each_event_once(clean_postgres_url: str, redis_url: str) -> None:
    """The on-loop writer (PostgreSQL + Redis) keeps the same promise under a burst."""
    writer = AsyncIngestWriter(clean_postgres_url, redis_url)

    async def burst() -> list[Recorded]:
        writer.start()
        try:
            requests = [writer.record(event(n)) for n in range(150) for _ in range(2)]
            return list(await asyncio.gather(*requests))
        finally:
            await writer.stop()

    results = asyncio.run(burst())

    assert [r.duplicate for r in results].count(False) == 150
    assert redis.Redis.from_url(redis_url).llen(QUEUE) == 150
    ledger = Ledger.from_url(clean_postgres_url)
    statuses = {ledger.get_event(r.event_id).status for r in results}  # type: ignore[union-attr]
    assert statuses == {EventStatus.QUEUED}
    assert len({r.event_id for r in results}) == 150
    ledger.engine.dispose()


def test_async_writer_broker_down_leaves_events_for_the_retry(
    clean_postgres_url: str, redis_url: str
) -> None:
    """Redis down: the request fails (503), the event stays received, and the retry queues it."""
    down = AsyncIngestWriter(clean_postgres_url, "redis://127.0.0.1:1/0")
    up = AsyncIngestWriter(clean_postgres_url, redis_url)

    async def attempt(writer: AsyncIngestWriter) -> Recorded | Exception:
        writer.start()
        try:
            return await writer.record(event(7))
        except Exception as exc:
            return exc
        finally:
            await writer.stop()

    failed = asyncio.run(attempt(down))
    retried = asyncio.run(attempt(up))

    assert isinstance(failed, BrokerUnavailable)
    assert isinstance(retried, Recorded)
    assert (retried.duplicate, retried.needs_enqueue) == (True, True)
    assert redis.Redis.from_url(redis_url).llen(QUEUE) == 1
    ledger = Ledger.from_url(clean_postgres_url)
    assert ledger.get_event(retried.event_id).status == EventStatus.QUEUED  # type: ignore[union-attr]
    ledger.engine.dispose()


def test_async_writer_stores_every_field_as_the_threaded_writer_does(
    clean_postgres_url: str, redis_url: str
) -> None:
    """The on-loop writer sends a batch's rows as one JSON document: every column (grant ids,
    flags, texts with quotes and non-ASCII, missing values, the times) reads back the same as
    the same events written by the threaded writer (SQLAlchemy, one array per column)."""
    odd = 'a "quoted", back\\slash, {brace} and ünïcode'
    news = [
        event(1, workspace_id="ws-1", access_grant_ids=("g-1", "g-2"), is_backup_code=True,
              occurred_at="2026-12-05T10:00:00.000Z"),
        event(2, svix=None, access_method_id=None, status=EventStatus.IGNORED, detail=odd),
        NewEvent("msg_3", None, None, status=EventStatus.REJECTED, detail="not a JSON object"),
        event(4, source="reconcile", occurred_at='"ü\\"}'),
    ]  # fmt: skip
    writer = AsyncIngestWriter(clean_postgres_url, redis_url)

    async def write() -> list[Recorded]:
        writer.start()
        try:
            return list(await asyncio.gather(*(writer.record(n) for n in news)))
        finally:
            await writer.stop()

    on_loop = asyncio.run(write())
    ledger = Ledger.from_url(clean_postgres_url)

    # The same events again under other ids, through the threaded writer.
    def other(value: str | None) -> str | None:
        return value and f"t-{value}"

    again = [
        replace(n, svix_id=other(n.svix_id), seam_event_id=other(n.seam_event_id)) for n in news
    ]
    threaded = [ledger.record_events([n], as_queued=True)[0] for n in again]

    skip = {"id", "svix_id", "seam_event_id", "received_at", "queued_at"}

    def stored(recorded: Recorded) -> dict[str, object]:
        row = ledger.get_event(recorded.event_id)
        assert row is not None
        values = {c.name: getattr(row, c.name) for c in row.__table__.columns if c.name not in skip}
        values["queued"] = row.queued_at is not None
        values["received_tz"] = row.received_at.utcoffset() if row.received_at else "none"
        return values

    assert [stored(r) for r in on_loop] == [stored(r) for r in threaded]
    first = ledger.get_event(on_loop[0].event_id)
    assert first is not None
    assert first.access_grant_ids == ["g-1", "g-2"]
    assert first.is_backup_code
    assert first.workspace_id == "ws-1"
    assert ledger.get_event(on_loop[1].event_id).detail == odd  # type: ignore[union-attr]
    ledger.engine.dispose()


def test_async_writer_sends_a_lone_batch_as_one_statement(
    clean_postgres_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook alone in its batch costs one round trip to PostgreSQL: the INSERT, no BEGIN or
    COMMIT of its own (libpq's trace of what the lanes sent); a duplicate's read follows it."""
    trace = (tmp_path / "libpq.trace").open("w")
    connect = psycopg.AsyncConnection.connect

    async def traced(*args: Any, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
        connection = await connect(*args, **kwargs)
        connection.pgconn.trace(trace.fileno())
        return connection

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", traced)
    writer = AsyncIngestWriter(clean_postgres_url, redis_url)

    async def two() -> list[Recorded]:
        writer.start()
        try:
            return [await writer.record(event(1)), await writer.record(event(1))]
        finally:
            await writer.stop()

    first, again = asyncio.run(two())
    trace.close()

    assert (first.duplicate, again.duplicate, again.event_id) == (False, True, first.event_id)
    sent = [line.split("\t")[3:] for line in (tmp_path / "libpq.trace").read_text().splitlines()]
    queries = [" ".join(fields) for fields in sent if fields and fields[0] in ("Query", "Parse")]
    assert not [q for q in queries if "BEGIN" in q or "COMMIT" in q], queries
    assert sum("INSERT INTO events" in q for q in queries) == 2, queries
