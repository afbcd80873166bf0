"""The task and delivery-tag ids the web process writes into Celery's messages."""

from __future__ import annotations

import base64
import json
import uuid

from app.intake.queue import process_event_messages, uuid4_text


def test_ids_are_random_version_4_uuids_in_their_usual_text() -> None:
    ids = [uuid4_text() for _ in range(2000)]
    parsed = [uuid.UUID(text) for text in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [str(u) for u in parsed] == ids  # lower-case, hyphenated, as str(uuid4())
    assert len(set(ids)) == len(ids)
    # Every one of the 122 random bits varies.
    varying = 0
    for u in parsed:
        varying |= u.int ^ parsed[0].int
    assert bin(varying).count("1") == 122


def test_each_message_names_its_event_under_its_own_ids() -> None:
    messages = [json.loads(m) for m in process_event_messages([7, 8])]
    headers = [m["headers"] for m in messages]
    assert [json.loads(base64.b64decode(m["body"]))[0] for m in messages] == [[7], [8]]
    task_ids = [h["id"] for h in headers]
    tags = [m["properties"]["delivery_tag"] for m in messages]
    assert len({*task_ids, *tags}) == 4
    assert all(uuid.UUID(i).version == 4 for i in [*task_ids, *tags])
    assert [h["root_id"] for h in headers] == task_ids
