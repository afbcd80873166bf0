"""Recording a batch of incoming events in one round trip: the rows, the SQL, the sorting.

Shared by the ledger's own `record_events` (SQLAlchemy, any backend) and the web process's
asynchronous writer (psycopg on PostgreSQL), so both store and report a batch the same way.

A duplicate, by svix-id or by Seam event id, of an event already recorded or of an earlier
one in the same batch, is not inserted: its Recorded points at the first. With `as_queued`,
events with work to do are stored as queued already, saving a round trip: the caller queues
them next, and calls `Ledger.unqueue_events` if it cannot (a queued event never processed is
re-queued by the sweeper all the same).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.ledger.models import EventStatus


@dataclass(frozen=True)
class NewEvent:
    """An incoming event as the ledger keeps it: ids and flags, never a credential."""

    svix_id: str | None
    seam_event_id: str | None
    event_type: str | None
    workspace_id: str | None = None
    access_method_id: str | None = None
    access_grant_ids: tuple[str, ...] = ()
    is_backup_code: bool = False
    occurred_at: str | None = None
    source: str = "webhook"
    status: EventStatus = EventStatus.RECEIVED
    detail: str | None = None


@dataclass(frozen=True)
class Recorded:
    event_id: int
    duplicate: bool
    status: EventStatus
    # Whether the caller must hand it to the broker: a new event with work to do, or a
    # duplicate of one whose first publish never happened.
    needs_enqueue: bool


@dataclass(frozen=True)
class QueuePlan:
    """What a recorded batch asks of the broker, and of the ledger if the broker says no."""

    to_queue: list[int]  # every event with work to do
    stored_queued: list[int]  # new events stored as queued: back to received if the push fails
    retried: list[int]  # duplicates of events whose first publish failed: mark them queued

    @classmethod
    def of(cls, recorded: Sequence[Recorded]) -> QueuePlan:
        due = [r for r in recorded if r.needs_enqueue]
        return cls(
            to_queue=sorted({r.event_id for r in due}),
            stored_queued=sorted({r.event_id for r in due if not r.duplicate}),
            retried=sorted({r.event_id for r in due if r.duplicate}),
        )


def event_rows(
    news: Sequence[NewEvent], *, as_queued: bool, now: datetime
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for new in news:
        queued = as_queued and new.status == EventStatus.RECEIVED
        rows.append(
            {
                "svix_id": new.svix_id,
                "seam_event_id": new.seam_event_id,
                "event_type": new.event_type,
                "workspace_id": new.workspace_id,
                "access_method_id": new.access_method_id,
                "access_grant_ids": list(new.access_grant_ids),
                "is_backup_code": new.is_backup_code,
                "occurred_at": new.occurred_at,
                "source": new.source,
                "status": EventStatus.QUEUED.value if queued else new.status.value,
                "detail": new.detail,
                "received_at": now,
                "queued_at": now if queued else None,
            }
        )
    return rows


# PostgreSQL: one statement text whatever the batch size. The rows travel as arrays, so the
# server (and psycopg's automatic prepared statements) parse and plan it once; SQLAlchemy's
# many-values insert cost ~100 us of Python per row. Column names and types are these
# constants; every value is a bound parameter.
_PG_COLUMNS = {
    "svix_id": "text",
    "seam_event_id": "text",
    "event_type": "text",
    "workspace_id": "text",
    "access_method_id": "text",
    "access_grant_ids": "json",
    "is_backup_code": "boolean",
    "occurred_at": "text",
    "source": "text",
    "status": "text",
    "detail": "text",
    "received_at": "timestamptz",
    "queued_at": "timestamptz",
}


def _pg_insert(placeholder: str) -> str:
    arrays = ", ".join(
        f"CAST({placeholder.format(name)} AS {kind}[])" for name, kind in _PG_COLUMNS.items()
    )
    return " ".join(
        [
            "INSERT INTO events (",
            ", ".join([*_PG_COLUMNS, "attempts"]),
            ") SELECT *, 0 FROM unnest(",
            arrays,
            ") ON CONFLICT DO NOTHING RETURNING id, svix_id, seam_event_id",
        ]
    )


def _pg_insert_json(placeholder: str) -> str:
    """The same insert with the rows as one JSON array of objects: one C-encoded document
    per batch instead of an array per column, which psycopg adapts element by element in
    Python (a third of the ingest writer's time on the event loop)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in _PG_COLUMNS.items())
    return " ".join(
        [
            "INSERT INTO events (",
            ", ".join([*_PG_COLUMNS, "attempts"]),
            ") SELECT",
            ", ".join(f"r.{name}" for name in _PG_COLUMNS),
            ", 0 FROM json_to_recordset(CAST(",
            placeholder,
            f" AS json)) AS r({columns})",
            "ON CONFLICT DO NOTHING RETURNING id, svix_id, seam_event_id",
        ]
    )


_EXISTING_SQL = (
    "SELECT id, svix_id, seam_event_id, status FROM events "
    "WHERE svix_id = ANY({svix}) OR seam_event_id = ANY({events})"
)
# The insert for SQLAlchemy (`:name`) and for psycopg (`%(name)s`).
PG_INSERT = text(_pg_insert(":{}"))
PG_INSERT_PSYCOPG = _pg_insert_json("%(rows)s")
EXISTING = text(
    _EXISTING_SQL.format(svix="CAST(:svix AS text[])", events="CAST(:events AS text[])")
)
EXISTING_PSYCOPG = _EXISTING_SQL.format(svix="%(svix)s::text[]", events="%(events)s::text[]")


def as_arrays(rows: Sequence[dict[str, object]]) -> dict[str, list[object]]:
    arrays = {name: [row.get(name) for row in rows] for name in _PG_COLUMNS}
    arrays["access_grant_ids"] = [json.dumps(ids) for ids in arrays["access_grant_ids"]]
    return arrays


def as_json(rows: Sequence[dict[str, object]]) -> dict[str, str]:
    """PG_INSERT_PSYCOPG's parameter: the rows (timestamps in ISO 8601, with their zone)."""
    return {"rows": json.dumps([{**row, **_stamps(row)} for row in rows])}


def _stamps(row: dict[str, object]) -> dict[str, str | None]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else None
        for name in ("received_at", "queued_at")
        for value in (row.get(name),)
    }


def existing_params(news: Sequence[NewEvent]) -> dict[str, list[str]]:
    return {
        "svix": [n.svix_id for n in news if n.svix_id],
        "events": [n.seam_event_id for n in news if n.seam_event_id],
    }


def match(
    news: Sequence[NewEvent],
    rows: Sequence[dict[str, object]],
    inserted: Sequence[Any],
    existing: Sequence[Any],
) -> list[Recorded]:
    """Each event's Recorded, from the rows the insert returned and those it clashed with.

    `inserted` rows have (id, svix_id, seam_event_id); `existing` rows also a status.
    """
    fresh: dict[tuple[str, str | None], int] = {}
    for row in inserted:
        fresh[("svix", row[1])] = row[0]
        fresh[("event", row[2])] = row[0]
    old: dict[tuple[str, str | None], tuple[int, str]] = {}
    for row in existing:
        old[("svix", row[1])] = (row[0], row[3])
        old[("event", row[2])] = (row[0], row[3])
    results: list[Recorded] = []
    claimed: set[int] = set()
    for new, values in zip(news, rows, strict=True):
        keys = [("svix", new.svix_id), ("event", new.seam_event_id)]
        new_id = next((fresh[k] for k in keys if k[1] is not None and k in fresh), None)
        if new_id is not None and new_id not in claimed:
            claimed.add(new_id)
            status = EventStatus(str(values["status"]))
            results.append(Recorded(new_id, False, status, status == EventStatus.QUEUED))
            continue
        found = next((old[k] for k in keys if k[1] is not None and k in old), None)
        if found is None and new_id is not None:  # a repeat inside this batch
            found = (new_id, str(values["status"]))
        if found is None:
            raise RuntimeError("an insert was skipped without a row it clashed with")
        status = EventStatus(found[1])
        results.append(Recorded(found[0], True, status, status == EventStatus.RECEIVED))
    return results
