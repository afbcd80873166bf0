"""The worker's call for an event when an earlier worker died on it: the dead try is counted,
the event is set aside at the bound with the same alert as any poison, and a worker that is
merely slow is never mistaken for a dead one.

A worker that died is played by a start taken with a lease of zero (nothing renews it), the
trace a killed worker leaves; tests/e2e/faults/test_worker_lost.py kills real ones.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from app.context import Context
from app.events.tries import WORKER_LOST, handle_event
from app.ledger.console import ConsoleStore
from app.ledger.event_starts import StartKind
from app.ledger.models import EventStatus
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import CODE_ID, PIN, record, set_method

DEAD = timedelta(0)


@pytest.fixture(autouse=True)
def distinctive_pin(seam: SeamStandin) -> None:
    """A PIN no other text could contain by chance, so counting it in a message means something."""
    set_method(seam, CODE_ID, code=PIN)


def set_aside_by_lost_workers() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "keycourier_events_set_aside":
            total += sum(
                s.value
                for s in metric.samples
                if s.name.endswith("_total") and s.labels.get("cause") == "worker_lost"
            )
    return total


def access_method_reads(seam: SeamStandin) -> int:
    """Reads of the access method: with its related resources (a delivery's), or on its own."""
    paths = ("/access_methods/get", "/access_methods/get_related")
    return sum(1 for r in seam.requests if r.path.endswith(paths))


def die_on(services: Context, event_id: int) -> None:
    """A worker starts the event and dies before its try ends."""
    start = services.ledger.start_event(event_id, DEAD, services.policy.event_max_tries, "x")
    assert start.kind is StartKind.STARTED


def test_an_event_a_worker_died_on_is_counted_then_delivered(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """The next pickup counts the dead try (with the reason) and delivers the key as usual;
    its own try leaves no start behind."""
    event_id = record(services, "access_method.issued.code")
    die_on(services, event_id)

    outcome = handle_event(services, event_id)

    assert outcome.status == EventStatus.PROCESSED, outcome.detail
    assert [m["body"].count(PIN) for m in twilio.sent] == [1]
    assert len(sendgrid.sent) == 1
    event = services.ledger.get_event(event_id)
    assert event is not None
    assert (event.failed_tries, event.lost_tries, event.processing_token) == (1, 1, None)


def test_the_bound_of_dead_tries_sets_the_event_aside_with_the_usual_alert(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With EVENT_MAX_TRIES=3, the pickup after three dead tries reads nothing from Seam and
    sends nothing: the event is poisoned with the reason, an error is logged, it is counted
    under cause worker_lost and the console's alerts list it."""
    services = Context.from_settings(
        load_settings({**settings_env, "EVENT_MAX_TRIES": "3"}), ledger
    )
    event_id = record(services, "access_method.issued.code")
    for _ in range(3):
        die_on(services, event_id)
    reads, before = access_method_reads(seam), set_aside_by_lost_workers()

    with caplog.at_level(logging.ERROR):
        outcome = handle_event(services, event_id)

    assert outcome.status == EventStatus.POISONED
    assert access_method_reads(seam) == reads
    assert twilio.sent == []
    event = ledger.get_event(event_id)
    assert event is not None
    assert event.status == EventStatus.POISONED
    assert event.detail == f"set aside after 3 failed tries: {WORKER_LOST}"
    assert set_aside_by_lost_workers() == before + 1
    assert any("event set aside" in r.getMessage() for r in caplog.records)
    assert [e.id for e in ConsoleStore(ledger.engine).poisoned_events()] == [event_id]
    assert handle_event(services, event_id).detail == "already done"


def test_a_copy_of_the_task_while_a_worker_is_on_it_does_nothing(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A living worker holds the event (its heartbeat runs): a second pickup reads nothing,
    sends nothing and counts nothing, however many times it comes."""
    event_id = record(services, "access_method.issued.code")
    held = services.ledger.start_event(event_id, timedelta(minutes=5), 1, "x")
    assert held.kind is StartKind.STARTED
    reads = access_method_reads(seam)

    for _ in range(3):
        outcome = handle_event(services, event_id)
        assert outcome.detail == "being processed by another worker"

    assert access_method_reads(seam) == reads
    assert twilio.sent == []
    event = services.ledger.get_event(event_id)
    assert event is not None
    assert (event.status, event.failed_tries, event.processing_token) == (
        EventStatus.RECEIVED,
        0,
        held.token,
    )


def test_a_failed_try_ends_its_start_so_it_is_counted_once(
    services: Context, seam: SeamStandin
) -> None:
    """A try that raises is one failed try and leaves no start: the next pickup does not count
    it again as a dead worker's."""
    set_method(seam, CODE_ID, mode="telepathy")
    event_id = record(services, "access_method.issued.code")

    assert handle_event(services, event_id).status == EventStatus.RECEIVED
    event = services.ledger.get_event(event_id)
    assert event is not None
    assert (event.failed_tries, event.lost_tries, event.processing_token) == (1, 0, None)

    handle_event(services, event_id)
    again = services.ledger.get_event(event_id)
    assert again is not None
    assert (again.failed_tries, again.lost_tries) == (2, 0)


def test_an_event_beside_a_crash_looping_one_waits_its_turn_and_is_delivered(
    services: Context, twilio: TwilioStandin
) -> None:
    """Two events were in a worker that died, and the other is in a worker again: this one
    waits (counted once, not again), then goes once that try ends."""
    killer = record(services, "access_method.issued.code", event_id="evt_killer")
    neighbour = record(services, "access_method.issued.code", event_id="evt_neighbour")
    die_on(services, killer)
    die_on(services, neighbour)
    again = services.ledger.start_event(killer, timedelta(minutes=5), 8, "x")
    assert again.kind is StartKind.STARTED
    assert again.token is not None

    waited = handle_event(services, neighbour)
    handle_event(services, neighbour)

    assert waited.detail == "waiting for another event's try to end"
    assert twilio.sent == []
    event = services.ledger.get_event(neighbour)
    assert event is not None
    assert (event.failed_tries, event.processing_token) == (1, None)

    services.ledger.end_event_start(killer, again.token)
    assert handle_event(services, neighbour).status == EventStatus.PROCESSED
    assert [m["body"].count(PIN) for m in twilio.sent] == [1]
