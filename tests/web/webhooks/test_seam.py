"""POST /webhooks/seam against a real ledger (SQLite and PostgreSQL) and a real Redis broker."""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app.intake.queue import PROCESS_EVENT
from app.ledger.migrate import upgrade
from app.ledger.models import Event, EventStatus
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SAMPLES
from app.standins.signing import signed_headers
from app.web.main import create_app
from app.web.webhooks.seam import MAX_BODY_BYTES
from tests.conftest import TEMPLATES, WEBHOOK_SECRET

OTHER_SECRET = "whsec_" + base64.b64encode(b"someone else's secret!!").decode()
PIN = "739164"


def sample_event(name: str = "access_method.issued.code", **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / "events" / f"{name}.json").read_text())
    event.update(changes)
    return event


def body_of(event: object) -> bytes:
    return json.dumps(event).encode()


def queued_tasks(redis_url: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message waiting in the broker's queue."""
    client = redis.Redis.from_url(redis_url)
    raw_messages = client.lrange("keycourier", 0, -1)
    client.close()
    tasks = []
    for raw in raw_messages:
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks


def raw_queue(redis_url: str) -> bytes:
    client = redis.Redis.from_url(redis_url)
    raw = b"".join(client.lrange("keycourier", 0, -1))
    client.close()
    return raw


def events_in(ledger: Ledger) -> list[Event]:
    with Session(ledger.engine) as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def make_client(ledger: Ledger, redis_url: str) -> TestClient:
    settings = load_settings(
        {
            "SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "REDIS_URL": redis_url,
            "TEMPLATES_DIR": str(TEMPLATES),
        }
    )
    return TestClient(create_app(settings, ledger=ledger))


@pytest.fixture
def client(ledger: Ledger, redis_url: str) -> Iterator[TestClient]:
    with make_client(ledger, redis_url) as test_client:
        yield test_client


def post(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/webhooks/seam", content=body, headers=headers)


def test_signed_event_is_recorded_then_queued_with_its_id_only(
    client: TestClient, ledger: Ledger, redis_url: str
) -> None:
    """A correctly signed event is answered 200, recorded as queued, and queued by id alone."""
    body = body_of(sample_event(code=PIN))
    response = post(client, body, signed_headers(WEBHOOK_SECRET, body, msg_id="msg_1"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "received"
    [event] = events_in(ledger)
    assert event.status == EventStatus.QUEUED
    assert event.svix_id == "msg_1"
    assert event.seam_event_id == "8e5f9a1c-0b3d-4c2e-9f7a-6b5d4c3e2f10"
    assert event.access_grant_ids == ["b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b"]
    assert queued_tasks(redis_url) == [(PROCESS_EVENT, [event.id])]
    assert PIN.encode() not in raw_queue(redis_url)


def test_same_svix_id_twice_queues_once(client: TestClient, ledger: Ledger, redis_url: str) -> None:
    """Svix retrying the same message is answered 2xx and queues nothing more."""
    body = body_of(sample_event())
    headers = signed_headers(WEBHOOK_SECRET, body, msg_id="msg_dup")
    first, second = post(client, body, headers), post(client, body, headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["outcome"] == "duplicate"
    assert len(events_in(ledger)) == 1
    assert len(queued_tasks(redis_url)) == 1


def test_same_event_id_under_new_svix_id_queues_once(
    client: TestClient, ledger: Ledger, redis_url: str
) -> None:
    """The same Seam event delivered as a new Svix message is a duplicate too."""
    body = body_of(sample_event())
    post(client, body, signed_headers(WEBHOOK_SECRET, body, msg_id="msg_a"))
    response = post(client, body, signed_headers(WEBHOOK_SECRET, body, msg_id="msg_b"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "duplicate"
    assert len(events_in(ledger)) == 1
    assert len(queued_tasks(redis_url)) == 1


def _forgeries(body: bytes) -> dict[str, dict[str, str]]:
    good = signed_headers(WEBHOOK_SECRET, body)
    stale_time = datetime.now(UTC) - timedelta(minutes=6)
    return {
        "unsigned": {"content-type": "application/json"},
        "other secret": signed_headers(OTHER_SECRET, body),
        "stale": signed_headers(WEBHOOK_SECRET, body, timestamp=stale_time),
        "future": signed_headers(
            WEBHOOK_SECRET, body, timestamp=datetime.now(UTC) + timedelta(minutes=6)
        ),
        "tampered id": {**good, "svix-id": "msg_other"},
        "garbage signature": {**good, "svix-signature": "garbage"},
        "non-base64 signature": {**good, "svix-signature": "v1,%%%not-base64%%%"},
        "unknown version only": {**good, "svix-signature": "v9," + good["svix-signature"][3:]},
        "non-numeric timestamp": {**good, "svix-timestamp": "yesterday"},
        "missing id": {k: v for k, v in good.items() if k != "svix-id"},
    }


@pytest.mark.parametrize("kind", list(_forgeries(b"{}")))
def test_forged_or_malformed_requests_get_4xx_and_leave_no_trace(
    client: TestClient, ledger: Ledger, redis_url: str, kind: str
) -> None:
    """Anything not signed by Seam's secret within 5 minutes is a 4xx, recorded nowhere."""
    body = body_of(sample_event())
    response = post(client, body, _forgeries(body)[kind])

    assert 400 <= response.status_code < 500
    assert events_in(ledger) == []
    assert queued_tasks(redis_url) == []


def test_tampered_body_is_refused(client: TestClient, ledger: Ledger) -> None:
    """A body changed after signing fails verification."""
    body = body_of(sample_event())
    headers = signed_headers(WEBHOOK_SECRET, body)
    response = post(client, body.replace(b"issued", b"deleted"), headers)

    assert response.status_code == 400
    assert events_in(ledger) == []


def test_non_utf8_body_is_a_4xx(client: TestClient, ledger: Ledger) -> None:
    """Bytes that are not UTF-8 cannot be a Seam event: 4xx, never a 5xx."""
    body = b"\xff\xfe\x00garbage"
    headers = signed_headers(WEBHOOK_SECRET, b"placeholder")
    response = post(client, body, headers)

    assert response.status_code == 400
    assert events_in(ledger) == []


def test_oversized_body_is_413_by_declared_length(client: TestClient, ledger: Ledger) -> None:
    """A Content-Length over 256 KiB is refused with 413 before the body is read."""
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = post(client, body, signed_headers(WEBHOOK_SECRET, b"{}"))

    assert response.status_code == 413
    assert events_in(ledger) == []


def test_oversized_chunked_body_is_413(client: TestClient, ledger: Ledger) -> None:
    """A body streamed without a length is cut off at 256 KiB with 413."""
    chunk = b"x" * 65536

    def stream() -> Iterator[bytes]:
        for _ in range(5):
            yield chunk

    response = client.post(
        "/webhooks/seam", content=stream(), headers=signed_headers(WEBHOOK_SECRET, b"{}")
    )

    assert response.status_code == 413
    assert events_in(ledger) == []


def test_body_of_exactly_the_limit_is_read(client: TestClient) -> None:
    """256 KiB itself is allowed: the limit is not off by one."""
    padding = "x" * (MAX_BODY_BYTES - len(body_of(sample_event(padding=""))))
    body = body_of(sample_event(padding=padding))
    assert len(body) == MAX_BODY_BYTES

    response = post(client, body, signed_headers(WEBHOOK_SECRET, body))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"this is not json", "not a JSON object"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"event_type": "access_method.issued"}', "event_id or event_type missing"),
        (b'{"event_id": "e-1"}', "event_id or event_type missing"),
    ],
)
def test_signed_but_unreadable_is_recorded_rejected_and_answered_2xx(
    client: TestClient, ledger: Ledger, redis_url: str, body: bytes, detail: str
) -> None:
    """Seam signed it, so retrying cannot help: record it as rejected, answer 2xx, queue nothing."""
    response = post(client, body, signed_headers(WEBHOOK_SECRET, body, msg_id="msg_bad"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected"
    [event] = events_in(ledger)
    assert (event.status, event.detail, event.svix_id) == (EventStatus.REJECTED, detail, "msg_bad")
    assert queued_tasks(redis_url) == []


def test_a_grant_event_is_recorded_under_its_grant_and_queued(
    client: TestClient, ledger: Ledger, redis_url: str
) -> None:
    """access_grant.access_times_changed names one access grant and no access method: it is
    recorded under that grant and queued; without a grant id it is recorded and ignored."""
    body = body_of(sample_event("access_grant.access_times_changed"))
    response = post(client, body, signed_headers(WEBHOOK_SECRET, body, msg_id="msg_t"))
    bare = body_of(sample_event("access_grant.access_times_changed", event_id="e2"))
    bare = bare.replace(b'"access_grant_id"', b'"not_a_grant_id"')
    post(client, bare, signed_headers(WEBHOOK_SECRET, bare, msg_id="msg_u"))

    assert response.json()["outcome"] == "received"
    event, ignored = events_in(ledger)
    assert event.status == EventStatus.QUEUED
    assert event.access_method_id is None
    assert event.access_grant_ids == ["b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b"]
    assert queued_tasks(redis_url) == [(PROCESS_EVENT, [event.id])]
    assert ignored.status == EventStatus.IGNORED


def test_unhandled_event_type_is_recorded_and_not_queued(
    client: TestClient, ledger: Ledger, redis_url: str
) -> None:
    """An event type keycourier does not act on is recorded as ignored and answered 2xx."""
    body = body_of(sample_event("device.connected"))
    response = post(client, body, signed_headers(WEBHOOK_SECRET, body))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    [event] = events_in(ledger)
    assert (event.status, event.event_type) == (EventStatus.IGNORED, "device.connected")
    assert queued_tasks(redis_url) == []


def test_ledger_unreachable_is_503(redis_url: str) -> None:
    """When the database cannot be reached, the answer is 503 so Svix retries."""
    unreachable = Ledger.from_url("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with make_client(unreachable, redis_url) as client:
        body = body_of(sample_event())
        response = post(client, body, signed_headers(WEBHOOK_SECRET, body))

    assert response.status_code == 503
    assert queued_tasks(redis_url) == []


def test_broker_unreachable_is_503_and_the_retry_queues_it(ledger: Ledger, redis_url: str) -> None:
    """A broker outage answers 503; Svix's retry of the same message then queues it once."""
    body = body_of(sample_event())
    headers = signed_headers(WEBHOOK_SECRET, body, msg_id="msg_outage")
    with make_client(ledger, "redis://127.0.0.1:1/0") as down:
        assert post(down, body, headers).status_code == 503
    [event] = events_in(ledger)
    assert event.status == EventStatus.RECEIVED

    with make_client(ledger, redis_url) as up:
        response = post(up, body, headers)

    assert response.status_code == 200
    assert ledger.get_event(event.id).status == EventStatus.QUEUED  # type: ignore[union-attr]
    assert queued_tasks(redis_url) == [(PROCESS_EVENT, [event.id])]


def test_healthz_and_readyz(client: TestClient) -> None:
    """healthz says alive; readyz says the database and the broker answer, templates are ok."""
    health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert set(health["event_loop_lag"]) == {"max_ms", "recent_max_ms"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "broker": "ok",
        "templates": {"status": "ok"},
    }


def test_readyz_names_what_is_down(ledger: Ledger) -> None:
    """readyz answers 503 and names the broker when the broker is down."""
    with make_client(ledger, "redis://127.0.0.1:1/0") as client:
        ready = client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["broker"] == "unavailable"
    assert ready.json()["database"] == "ok"


def test_broker_that_never_answers_is_503_not_a_hang(tmp_path: Path) -> None:
    """A broker that accepts connections but never replies gives 503, not a request that hangs."""
    engine_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger.from_url(engine_url)
    upgrade(ledger.engine)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads or writes
        port = silent.getsockname()[1]
        with make_client(ledger, f"redis://127.0.0.1:{port}/0") as client:
            body = body_of(sample_event())
            response = post(client, body, signed_headers(WEBHOOK_SECRET, body))

    assert response.status_code == 503
    [event] = events_in(ledger)
    assert event.status == EventStatus.RECEIVED


def test_forged_request_leaves_one_log_line(
    client: TestClient, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused webhook is one warning naming the reason, with neither secret nor body in it."""
    body = body_of(sample_event(code=PIN))
    with caplog.at_level(logging.INFO, logger="app.web.webhooks.seam"):
        post(client, body, signed_headers(OTHER_SECRET, body))

    [record] = [r for r in caplog.records if r.name == "app.web.webhooks.seam"]
    assert record.levelno == logging.WARNING
    assert "signature check failed" in record.getMessage()
    for secret in (PIN, WEBHOOK_SECRET, OTHER_SECRET):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"event_id": "e" * 101}, "malformed event_id"),
        ({"event_type": "access_method." + "x" * 100}, "malformed event_type"),
        ({"access_method_id": "am-1\x00"}, "malformed access_method_id"),
        ({"workspace_id": "w" * 500}, "malformed workspace_id"),
    ],
)
def test_signed_ids_that_are_no_seam_ids_are_recorded_rejected_without_their_value(
    client: TestClient, ledger: Ledger, redis_url: str, changes: dict[str, str], detail: str
) -> None:
    """Signed, but an id too long for the ledger or with a NUL (PostgreSQL refuses one): the
    event is recorded as rejected with the reason and none of the odd value, answered 2xx,
    queued nowhere; the next event is taken in as usual."""
    odd = body_of(sample_event(**changes))
    response = post(client, odd, signed_headers(WEBHOOK_SECRET, odd, msg_id="msg_odd"))
    good = body_of(sample_event(event_id="e-after-the-odd-one"))
    after = post(client, good, signed_headers(WEBHOOK_SECRET, good, msg_id="msg_good"))

    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected"
    assert after.json()["outcome"] == "received"
    rejected, received = events_in(ledger)
    assert rejected.status == EventStatus.REJECTED
    assert (rejected.detail or "").startswith(detail)
    assert rejected.seam_event_id is None
    assert rejected.access_method_id is None
    assert received.status == EventStatus.QUEUED
    assert queued_tasks(redis_url) == [(PROCESS_EVENT, [received.id])]


def test_an_odd_time_or_grant_id_is_dropped_and_the_event_kept(
    client: TestClient, ledger: Ledger, redis_url: str
) -> None:
    """What the ledger keeps only to show (occurred_at) or a grant id that is no id: dropped,
    and the event is otherwise taken in and queued (its Seam reads come from Seam)."""
    event = sample_event(occurred_at="2025-06-01T12:00:00.000Z" + "0" * 60)
    event["access_grant_ids"] = [*event.get("access_grant_ids", []), "g\x00" * 80]
    body = body_of(event)
    response = post(client, body, signed_headers(WEBHOOK_SECRET, body, msg_id="msg_time"))

    assert response.json()["outcome"] == "received"
    [recorded] = events_in(ledger)
    assert recorded.occurred_at is None
    assert all(len(g) <= 100 and g.isprintable() for g in recorded.access_grant_ids)
    assert recorded.status == EventStatus.QUEUED
