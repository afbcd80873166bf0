"""What follows a provider's "undelivered" when something is down, and the provider racing
the worker: the ledger keeps the fallback due until a worker has planned it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from app.context import Context
from app.delivery.fallback import after_failure
from app.delivery.undelivered import after_undelivered
from app.errors import TransientProviderError
from app.intake.queue import RedisEnqueuer
from app.intake.sweeper import sweep
from app.ledger.models import AttemptOutcome, DeliveryStatus
from app.ledger.provider_events import ProviderReport, ReportOutcome
from app.ledger.store import AttemptEnd, Finished, Ledger, NewDelivery
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.events.test_pipeline import deliveries, record, run
from tests.processes import free_port
from tests.queueing import RecordingEnqueuer, sent_ids
from tests.status_fixtures import Keycourier, make_keycourier, post_twilio


@pytest.fixture
def kc(settings_env: dict[str, str], ledger: Ledger, redis_url: str) -> Keycourier:
    return make_keycourier(settings_env, ledger, redis_url, DELIVERY_CHANNELS="sms")


def sweep_fallbacks(ledger: Ledger, patience: timedelta = timedelta(0)) -> list[int]:
    queue = RecordingEnqueuer()
    sweep(ledger, queue, patience=patience)
    return queue.undelivered


def test_broker_down_the_report_is_kept_and_the_sweeper_hands_the_fallback_on(
    kc: Keycourier, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """Redis unreachable when Twilio reports undelivered: still 200 (Twilio does not retry),
    the fallback stays due, the sweeper queues it, and once planned it is not queued again."""
    [delivery] = kc.issue()
    [message] = twilio.sent
    dead = RedisEnqueuer(f"redis://127.0.0.1:{free_port()}/0")
    down = Keycourier(
        kc.services,
        TestClient(create_app(kc.settings, ledger=kc.ledger, enqueuer=dead)),
        kc.redis_url,
        kc.settings,
    )

    response = post_twilio(down, twilio, message["sid"], "undelivered", 30003)
    assert response.json() == {"outcome": "undelivered"}

    assert sweep_fallbacks(kc.ledger, patience=timedelta(minutes=5)) == []  # just handed on
    assert sweep_fallbacks(kc.ledger) == [delivery.id]
    planned = after_undelivered(kc.services, delivery.id)
    assert planned is not None
    kc.send_all(sent_ids(planned))
    assert len(sendgrid.sent) == 2  # the guest's email and the front desk's alert
    assert sweep_fallbacks(kc.ledger) == []


def test_seam_down_the_fallback_stays_due(
    kc: Keycourier, twilio: TwilioStandin, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """The guest cannot be read: nothing is planned, the error propagates for a retry, and
    the sweeper still finds the fallback due; with Seam back it is planned once."""
    [delivery] = kc.issue()
    post_twilio(kc, twilio, twilio.sent[0]["sid"], "failed", 30008)
    seam.fail_next(3, 503, {"error": {"type": "service_unavailable", "message": "down"}})

    with pytest.raises(TransientProviderError):
        after_undelivered(kc.services, delivery.id)
    assert sweep_fallbacks(kc.ledger) == [delivery.id]
    assert kc.run_fallbacks() == ["planned"]  # the web's task, run now that Seam answers
    assert len(sendgrid.sent) == 2  # the guest's email and the front desk's alert
    assert sweep_fallbacks(kc.ledger) == []


def test_a_report_that_beats_the_worker_is_not_overwritten(kc: Keycourier) -> None:
    """Twilio reports delivered while the worker is still recording Twilio's answer: the
    report is held until the worker records that message id, then the delivery is delivered
    and the worker's attempt kept."""
    ledger = kc.ledger
    delivery_id, _ = ledger.plan_delivery(_new_delivery())
    claimed = ledger.claim_delivery(delivery_id, timedelta(minutes=1))
    assert claimed is not None
    attempt = ledger.begin_attempt(claimed, "twilio", None, timedelta(minutes=1))
    assert attempt is not None

    reported = ledger.record_report(
        ProviderReport("twilio", "SM1:delivered", "delivered", delivery_id, "SM1"),
        DeliveryStatus.DELIVERED,
    )
    assert reported.outcome is ReportOutcome.HELD
    finished = ledger.finish_attempt(
        attempt, AttemptEnd(AttemptOutcome.SENT, DeliveryStatus.SENT, "SM1")
    )
    assert finished is Finished.REPORTS_HELD
    assert ledger.apply_held_reports(delivery_id, "SM1") is False  # delivered, not undelivered

    delivery = ledger.get_delivery(delivery_id)
    assert delivery is not None
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.provider_message_id == "SM1"
    assert [a.outcome for a in delivery.attempts] == [AttemptOutcome.SENT]


def test_a_delivered_credential_counts_as_held(kc: Keycourier) -> None:
    """Delivered is still "the guest has it": no desk alert for it, and a deletion notice
    would go to it."""
    ledger = kc.ledger
    delivery_id, _ = ledger.plan_delivery(_new_delivery())
    claimed = ledger.claim_delivery(delivery_id, timedelta(minutes=1))
    assert claimed is not None
    attempt = ledger.begin_attempt(claimed, "twilio", None, timedelta(minutes=1))
    assert attempt is not None
    ledger.finish_attempt(attempt, AttemptEnd(AttemptOutcome.SENT, DeliveryStatus.SENT, "SM2"))
    ledger.record_report(
        ProviderReport("twilio", "SM2:delivered", "delivered", delivery_id, "SM2"),
        DeliveryStatus.DELIVERED,
    )
    delivery = ledger.get_delivery(delivery_id)
    assert delivery is not None
    assert ledger.credential_is_live(delivery)
    assert [d.id for d in ledger.delivered(["am-1"], ["pin_code"])] == [delivery_id]


def _new_delivery() -> NewDelivery:
    return NewDelivery(
        access_method_id="am-1",
        kind="pin_code",
        channel="sms",
        credential_fingerprint="fp-1",
        event_id=None,
        access_grant_id=None,
        user_identity_id=None,
        guest_name=None,
        reservation=None,
        destination_masked="+1555*****23",
    )


def test_a_report_about_a_key_the_other_channel_delivered_tells_no_one(
    services: Context, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """The guest has the PIN by SMS and by email; the email then bounces: no fallback is
    needed (the SMS went), so neither a new SMS nor a front-desk email."""
    run(services, record(services, "access_method.issued.code"))
    email = next(d for d in deliveries(services) if d.channel == "email")
    guest = services.seam.get_guest(email.user_identity_id or "")
    planned = after_failure(services.ledger, services.policy, email, guest, reported=True)

    assert planned == []
    assert len(twilio.sent) == 1
    assert len(sendgrid.sent) == 1
    assert [d.kind for d in deliveries(services)] == ["pin_code", "pin_code"]
