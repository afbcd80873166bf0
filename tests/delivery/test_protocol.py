"""The delivery protocol in one process, on real ledgers: where an attempt went, and resends
asked for at the same instant. tests/e2e/faults/test_protocol.py covers what needs real
processes (a stalled worker, SIGKILL, a crash between a failure and its follow-up);
tests/delivery/test_interleavings.py the claims of two workers and the sweeper."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from app.console.timeline import timeline
from app.context import Context
from app.delivery.destinations import destination_hash
from app.delivery.resend import ResendResult, resend
from app.delivery.send import Result
from app.events.processing import process_event as plan
from app.ledger.console import ConsoleStore, DeliveryQuery
from app.ledger.models import DeliveryStatus
from app.ledger.scope import EVERYWHERE
from app.standins.seam import SeamStandin
from app.standins.twilio import TwilioStandin
from tests.delivery.test_resend import delivered, issued_and_sent
from tests.events.test_pipeline import GUEST_ID, deliveries, record, send, time_passes
from tests.queueing import sent_ids

OLD_PHONE = "+15555550123"
NEW_PHONE = "+15555550188"


def test_the_delivery_shows_the_number_its_attempt_went_to(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """The guest's phone changes in Seam between two attempts: the SMS goes to the new number,
    the delivery shows it, a search for it finds the delivery, and the timeline says it is not
    the number the delivery was planned for."""
    twilio.fail_next(1, 503, {"code": 20503, "message": "unavailable", "status": 503})
    queue = sent_ids(plan(services, record(services, "access_method.issued.code")).next)
    sms = delivered(services)
    assert sms.id in queue
    assert send(services, sms.id) == Result.RETRY
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    assert guest["phone_number"] == OLD_PHONE
    seam.put_user_identity({**guest, "phone_number": NEW_PHONE})

    time_passes(services, sms.id)
    assert send(services, sms.id) == Result.SENT

    assert [m["to"] for m in twilio.sent] == [NEW_PHONE]
    after = services.ledger.get_delivery(sms.id)
    assert after is not None
    assert after.destination_masked == "+1********88"
    assert after.planned_destination_masked == "+1********23"
    found = ConsoleStore(services.ledger.engine).find_deliveries(
        DeliveryQuery(
            EVERYWHERE, destination_hash=destination_hash(services.policy.search_key(), NEW_PHONE)
        )
    )
    assert sms.id in [d.id for d in found]
    [planned, first, second] = timeline(after, [])
    assert planned.detail == "to +1********23"
    assert first.detail is not None
    assert first.detail.startswith("to +1********23;")
    assert second.detail is not None
    assert second.detail.startswith("to +1********88, not the planned +1********23")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_resends_asked_for_at_the_same_instant_send_once(
    services: Context, twilio: TwilioStandin
) -> None:
    """Eight desks press "resend" for the same key at once, each with its own request id: at
    most one new delivery is planned, and the guest gets one more SMS."""
    for round_number in range(5):
        sms = issued_and_sent(services) if round_number == 0 else delivered(services)
        before = {d.id for d in deliveries(services)}
        results = _at_once(
            8,
            lambda n, r=round_number, original=sms.id: resend(
                services, original, actor=f"desk-{n}", request_id=f"round{r}-desk{n}"
            ),
        )
        queued = [result for result in results if result.status == "queued"]
        new = [d for d in deliveries(services) if d.id not in before]
        assert len(queued) <= 1, [r.status for r in results]
        assert len(new) == len(queued)
        for result in queued:
            for delivery_id in sent_ids(result.next):
                assert send(services, delivery_id) == Result.SENT
        refused = {r.refusal for r in results if r.status == "refused"}
        assert refused <= {"still_sending"}
    sent_sms = [d for d in deliveries(services) if d.channel == "sms"]
    assert len(twilio.sent) == len([d for d in sent_sms if d.status == DeliveryStatus.SENT])


def _at_once(count: int, call: Callable[[int], ResendResult]) -> list[ResendResult]:
    """Run `call(n)` in `count` threads released together."""
    start = threading.Barrier(count)
    results: list[ResendResult | None] = [None] * count

    def run(n: int) -> None:
        start.wait()
        results[n] = call(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]
