"""Fault injection on real processes: a Redis the tests stop and wipe, workers they SIGTERM and
SIGKILL mid-send, a database they cut off. Each test ends with the guest holding exactly one
message per channel, or with the failure recorded and reported.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ledger.models import Delivery, DeliveryStatus, Event, EventStatus
from app.ledger.store import Ledger
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.e2e.faults.tcp_proxy import TcpProxy
from tests.processes import Processes, RedisServer, post_sample, running_web, wait_for

pytestmark = pytest.mark.e2e

PIN = "481620"
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
# Twilio holds each request this long: long enough to signal a worker in the middle of it.
HOLD_SECONDS = 3.0


@pytest.fixture
def database(clean_postgres_url: str) -> Iterator[TcpProxy]:
    """The session's PostgreSQL, reached through a proxy the test can cut."""
    host_port = clean_postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    with TcpProxy(host, int(port)) as proxy:
        yield proxy


@pytest.fixture
def keycourier(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    database: TcpProxy,
    broker: RedisServer,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes]]:
    """The web process (running), through which tests start workers; all stopped after."""
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url.replace(
            clean_postgres_url.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{database.port}"
        ),
        "REDIS_URL": broker.url,
        "PROVIDER_TIMEOUT_SECONDS": "10",
        # The default lease (15 s) and heartbeat; the sweeper runs often so tests wait less.
        "SWEEP_INTERVAL_SECONDS": "1",
    }
    with running_web(env, tmp_path) as running:
        yield running


def start_worker(processes: Processes, name: str = "worker") -> None:
    processes.start(name, "worker", "--concurrency", "4", "--beat")


def send_and_hold(base: str, processes: Processes, twilio: TwilioStandin, msg_id: str) -> None:
    """Post an issued PIN with a worker running, and return while Twilio holds the SMS."""
    start_worker(processes)
    twilio.latency = HOLD_SECONDS
    post_sample(base, "access_method.issued.code", msg_id, code=PIN)

    def reached_twilio() -> bool:
        return sum(1 for r in twilio.requests if r.method == "POST") == 1

    assert wait_for(reached_twilio, 30), "the SMS never reached Twilio"


def deliveries(ledger: Ledger) -> list[Delivery]:
    with Session(ledger.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def all_sent(ledger: Ledger) -> bool:
    found = deliveries(ledger)
    return bool(found) and all(d.status == DeliveryStatus.SENT for d in found)


def settled(twilio: TwilioStandin, sendgrid: SendGridStandin, seconds: float = 4) -> bool:
    """True if nothing more reaches the providers for a while (so a duplicate would show)."""
    before = (len(twilio.sent), len(sendgrid.sent))
    return not wait_for(lambda: (len(twilio.sent), len(sendgrid.sent)) != before, seconds)


def test_broker_restart_without_persistence_loses_nothing(
    keycourier: tuple[str, Processes],
    broker: RedisServer,
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """An event answered 200 survives Redis restarting empty: the sweeper re-queues it."""
    base, processes = keycourier
    assert post_sample(base, "access_method.issued.code", "msg_f1", code=PIN).status_code == 200
    assert broker.queue_length() == 1

    broker.stop()
    broker.start()
    assert broker.queue_length() == 0  # the queue is gone with the restart
    start_worker(processes)

    assert wait_for(lambda: len(twilio.sent) == 1 and len(sendgrid.sent) == 1, 60)
    assert settled(twilio, sendgrid)
    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)
    assert wait_for(lambda: all_sent(ledger), 10)


@pytest.mark.parametrize("worker_processes", ["1", "2"], ids=["one-process", "two-processes"])
@pytest.mark.parametrize("whole_group", [True, False], ids=["heroku", "kubernetes"])
def test_sigterm_mid_send_finishes_and_sends_once(
    keycourier: tuple[str, Processes],
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    whole_group: bool,
    worker_processes: str,
) -> None:
    """SIGTERM (to the whole group, or to PID 1 only) lets the running send finish, once,
    whether `keycourier worker` is Celery itself or the parent of two (WORKER_PROCESSES)."""
    base, processes = keycourier
    processes.env["WORKER_PROCESSES"] = worker_processes
    send_and_hold(base, processes, twilio, "msg_f2")

    processes.signal("worker", signal.SIGTERM, whole_group=whole_group)
    assert processes.wait("worker", timeout=30) == 0  # a warm shutdown, well inside a grace

    assert len(twilio.sent) == 1
    sms = next(d for d in deliveries(ledger) if d.channel == "sms")
    assert sms.status == DeliveryStatus.SENT
    twilio.latency = 0
    start_worker(processes, "worker-2")  # a new worker finds nothing left to send
    assert wait_for(lambda: all_sent(ledger), 60)
    assert settled(twilio, sendgrid)
    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)


@pytest.mark.parametrize("twilio_took_it", [True, False], ids=["twilio-took-it", "it-never-did"])
def test_sigkill_mid_send_completes_after_restart_once(
    keycourier: tuple[str, Processes],
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    twilio_took_it: bool,
) -> None:
    """A worker killed mid-call: a new one settles the SMS within 2 minutes, sent exactly once."""
    base, processes = keycourier
    if not twilio_took_it:
        twilio.fail_next(1, 503, {"code": 20503, "message": "unavailable", "status": 503})
    send_and_hold(base, processes, twilio, "msg_f3")

    processes.signal("worker", signal.SIGKILL, whole_group=True)
    processes.wait("worker", timeout=10)
    wait_for(lambda: False, HOLD_SECONDS)  # Twilio finishes (or fails) the orphaned request
    twilio.latency = 0
    assert len(twilio.sent) == (1 if twilio_took_it else 0)

    start_worker(processes, "worker-2")
    assert wait_for(lambda: all_sent(ledger), 120), [d.status for d in deliveries(ledger)]
    assert settled(twilio, sendgrid)
    assert len(twilio.sent) == 1
    assert len(sendgrid.sent) == 1


def test_database_down_then_back_marks_nothing_done_early(
    keycourier: tuple[str, Processes],
    database: TcpProxy,
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """With the database cut off the webhook answers 503; once it is back, all is sent once."""
    base, processes = keycourier
    start_worker(processes)
    database.cut()
    try:
        refused = post_sample(base, "access_method.issued.code", "msg_f4", code=PIN)
    finally:
        database.restore()
    assert refused.status_code == 503
    assert twilio.sent == []

    # Svix retries the same message once the database answers again.
    assert wait_for(
        lambda: post_sample(base, "access_method.issued.code", "msg_f4").status_code == 200, 30
    )
    assert wait_for(lambda: all_sent(ledger), 60)
    assert settled(twilio, sendgrid)
    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)


def test_database_lost_while_processing_is_retried(
    keycourier: tuple[str, Processes],
    database: TcpProxy,
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """The worker loses the database after the event was queued: it retries, nothing is lost."""
    base, processes = keycourier
    assert post_sample(base, "access_method.issued.code", "msg_f5", code=PIN).status_code == 200
    database.cut()
    start_worker(processes)
    assert not wait_for(lambda: bool(twilio.sent), 8)  # nothing goes out without the ledger
    database.restore()

    assert wait_for(lambda: all_sent(ledger), 90)
    assert settled(twilio, sendgrid)
    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)
    with Session(ledger.engine) as session:
        assert session.scalars(select(Event.status)).all() == [EventStatus.PROCESSED]
