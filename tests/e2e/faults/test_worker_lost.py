"""An event whose processing kills the worker, on real processes: set aside after EVENT_MAX_TRIES,
while another event goes through.

The worker really dies mid-processing: when it asks Seam (the stand-in) for one particular
access method, the test SIGKILLs the worker's process group before Seam answers, as the OOM
killer or a segfault would, and starts a new worker, as a supervisor would. Nothing in the
worker records those tries: only the start it committed before asking Seam tells the next
pickup that the last worker died on it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.events.tries import WORKER_LOST
from app.ledger.models import Delivery, DeliveryStatus, Event, EventStatus
from app.ledger.store import Ledger
from app.standins.http import Answer, RecordedRequest
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.processes import Processes, RedisServer, post_sample, running_web, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
PIN = "318054"
# An access method reading which kills the worker (the test does it, on Seam's side).
KILLER_ID = "0b7c9f52-3c1e-4a8d-9e6f-5d2a1b3c4e77"
MAX_TRIES = 3


@pytest.fixture
def keycourier(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    broker: RedisServer,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes]]:
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    seam.put_access_method({**method, "access_method_id": KILLER_ID, "code": "907731"})
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": broker.url,
        "EVENT_MAX_TRIES": str(MAX_TRIES),
        # Short leases and sweeps so that a dead worker's event comes back within seconds.
        "DELIVERY_LEASE_SECONDS": "3",
        "DELIVERY_HEARTBEAT_SECONDS": "1",
        "PROVIDER_TIMEOUT_SECONDS": "2",
        "SWEEP_INTERVAL_SECONDS": "1",
    }
    with running_web(env, tmp_path) as running:
        yield running


class WorkerKiller:
    """Seam's side of the fault: SIGKILL the worker's process group when it reads the killer
    access method, before the answer leaves."""

    def __init__(self, processes: Processes) -> None:
        self.processes = processes
        self.lock = threading.Lock()
        self.kills = 0

    def __call__(self, request: RecordedRequest, answer: Answer) -> None:
        # A delivery reads the access method with its related resources.
        if not request.path.endswith("/access_methods/get_related"):
            return
        if KILLER_ID not in (request.param_list("access_method_ids") or []):
            return
        with self.lock:
            worker = self.processes.running["worker"]
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                self.kills += 1

    def start_worker(self) -> None:
        with self.lock:
            self.processes.start("worker", "worker", "--concurrency", "4", "--beat")

    def worker_alive(self) -> bool:
        with self.lock:
            return self.processes.running["worker"].poll() is None


def event_by_seam_id(ledger: Ledger, seam_event_id: str) -> Event | None:
    with Session(ledger.engine) as session:
        return session.scalar(select(Event).where(Event.seam_event_id == seam_event_id))


def guest_deliveries(ledger: Ledger, access_method_id: str) -> list[Delivery]:
    with Session(ledger.engine) as session:
        return list(
            session.scalars(select(Delivery).where(Delivery.access_method_id == access_method_id))
        )


def test_an_event_that_kills_every_worker_is_set_aside_and_another_is_delivered(
    keycourier: tuple[str, Processes],
    seam: SeamStandin,
    ledger: Ledger,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:
    """Each worker that takes the killer event dies; after EVENT_MAX_TRIES deaths the next
    pickup sets it aside (poisoned, with the reason, an error logged) instead of dying, and the
    last worker lives on. An event posted meanwhile gets its guest the PIN, once."""
    base, processes = keycourier
    killer = WorkerKiller(processes)
    seam.observe(killer)
    killer.start_worker()
    posted = post_sample(
        base,
        "access_method.issued.code",
        "msg_killer",
        event_id="evt-killer",
        access_method_id=KILLER_ID,
    )
    assert posted.status_code == 200

    other_posted = False
    deadline = time.monotonic() + 240

    def set_aside() -> bool:
        event = event_by_seam_id(ledger, "evt-killer")
        return event is not None and event.status == EventStatus.POISONED

    while not set_aside():
        assert time.monotonic() < deadline, f"never set aside after {killer.kills} deaths"
        if not killer.worker_alive():
            if not other_posted:
                # Another guest's event arrives while the killer is crash-looping.
                other = post_sample(base, "access_method.issued.code", "msg_other", code=PIN)
                assert other.status_code == 200
                other_posted = True
            killer.start_worker()
        time.sleep(0.2)

    event = event_by_seam_id(ledger, "evt-killer")
    assert event is not None
    assert event.detail == f"set aside after {MAX_TRIES} failed tries: {WORKER_LOST}"
    assert (event.failed_tries, event.lost_tries) == (MAX_TRIES, MAX_TRIES)
    assert killer.kills == MAX_TRIES
    assert guest_deliveries(ledger, KILLER_ID) == []

    def other_delivered() -> bool:
        found = guest_deliveries(ledger, CODE_ID)
        return bool(found) and all(d.status == DeliveryStatus.SENT for d in found)

    assert other_posted
    assert wait_for(other_delivered, 60), [d.status for d in guest_deliveries(ledger, CODE_ID)]
    # Never handed out again: the worker lives through several more sweeps.
    assert not wait_for(lambda: not killer.worker_alive(), 5)
    assert killer.kills == MAX_TRIES
    assert [m["body"].count(PIN) for m in twilio.sent] == [1]
    assert len(sendgrid.sent) >= 1  # an email cut off by a kill may go twice (README)
    other = event_by_seam_id(ledger, "8e5f9a1c-0b3d-4c2e-9f7a-6b5d4c3e2f10")
    assert other is not None
    assert other.status == EventStatus.PROCESSED

    logs = processes.stop()
    assert "event set aside" in logs
    assert "907731" not in logs
    assert PIN not in logs
