"""A resend through real processes: the web side's Redis enqueuer hands the new delivery to a
real Celery worker, which sends it once even when its task message arrives twice."""

from __future__ import annotations

import pytest

from app.context import Context
from app.delivery.resend import resend
from app.intake.queue import RedisEnqueuer, hand_on
from app.ledger.models import DeliveryStatus
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.e2e.test_end_to_end import PIN, service
from tests.processes import Processes, post_sample, wait_for

pytestmark = pytest.mark.e2e
__all__ = ["service"]  # the fixture, shared with test_end_to_end


def test_resend_reaches_the_worker_and_a_duplicated_task_sends_once(
    service: tuple[str, Processes],
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
) -> None:
    """The guest's SMS went out; the desk resends it and its task message is delivered twice:
    the worker sends exactly one more SMS, with the PIN."""
    base, processes = service
    assert post_sample(base, "access_method.issued.code", "msg_resend_1", code=PIN).is_success
    assert wait_for(lambda: len(twilio.sent) == 1 and len(sendgrid.sent) == 1, 60)
    env = {**provider_env(seam, twilio, sendgrid), "DATABASE_URL": clean_postgres_url}
    ledger = Ledger.from_url(clean_postgres_url)
    services = Context.from_settings(load_settings(env), ledger)
    sms = next(d for d in ledger.recent_deliveries() if d.channel == "sms")
    enqueuer = RedisEnqueuer(redis_url)

    result = resend(services, sms.id, actor="desk-anna")
    assert result.status == "queued"
    assert result.delivery_id is not None
    hand_on(enqueuer, ledger, result.next)
    enqueuer.enqueue(result.next)  # the same task, duplicated

    assert wait_for(lambda: len(twilio.sent) == 2, 60)
    assert not wait_for(lambda: len(twilio.sent) > 2, seconds=5)
    assert PIN in twilio.sent[1]["body"]
    assert len(sendgrid.sent) == 1
    resent = ledger.get_delivery(result.delivery_id)
    assert resent is not None
    assert resent.status == DeliveryStatus.SENT
    logs = processes.stop()
    assert "delivery sent" in logs
    assert PIN not in logs
    ledger.engine.dispose()
