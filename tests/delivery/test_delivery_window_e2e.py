"""A scheduled delivery through real processes: uvicorn, a Celery worker running beat, Redis
and PostgreSQL, on the real clock. The processing task plans it and must not send it; beat's
sweeper releases it once due, and the worker sends it then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.ledger.models import Delivery
from app.ledger.store import Ledger
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.processes import Processes, post_sample, running_web, wait_for

pytestmark = pytest.mark.e2e

PIN = "605219"
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
GRANT_ID = "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b"
# How far ahead of now the credential is due: enough for the worker to start and process the
# event first, so that beat, not the processing task, is what sends it.
AHEAD = timedelta(seconds=25)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def service(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes, datetime]]:
    """Web and a worker with beat (sweeping every second), DELIVERY_LEAD_TIME=1m, and a
    stay that starts a minute and AHEAD from now: the credential is due AHEAD from now."""
    method = seam.get("access_method", CODE_ID)
    grant = seam.get("access_grant", GRANT_ID)
    assert method is not None
    assert grant is not None
    seam.put_access_method({**method, "code": PIN})
    due = datetime.now(UTC).replace(microsecond=0) + AHEAD
    starts = due + timedelta(minutes=1)
    seam.put_access_grant(
        {**grant, "starts_at": iso(starts), "ends_at": iso(starts + timedelta(days=2))}
    )
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
        "DELIVERY_LEAD_TIME": "1m",
        "SWEEP_INTERVAL_SECONDS": "1",
    }
    with running_web(env, tmp_path) as (base, processes):
        processes.start("worker", "worker", "--concurrency", "2", "--beat")
        yield base, processes, due


def test_beat_releases_a_scheduled_delivery_at_its_time(
    service: tuple[str, Processes, datetime],
    twilio: TwilioStandin,
    clean_postgres_url: str,
) -> None:
    """The SMS is planned with its time, goes out once, and no attempt starts before it."""
    base, processes, due = service
    assert post_sample(base, "access_method.issued.code", "msg_window_1").status_code == 200

    ledger = Ledger.from_url(clean_postgres_url)

    def sms() -> Delivery | None:
        with Session(ledger.engine) as session:
            return session.scalar(
                select(Delivery)
                .options(selectinload(Delivery.attempts))
                .where(Delivery.channel == "sms")
            )

    assert wait_for(lambda: sms() is not None, 60), "the event was never planned"
    assert wait_for(lambda: len(twilio.sent) == 1, 90), "the scheduled SMS never went"
    assert wait_for(lambda: getattr(sms(), "status", None) == "sent", 30)
    delivery = sms()
    assert delivery is not None
    assert delivery.not_before == due
    assert [a.outcome for a in delivery.attempts] == ["sent"]
    assert delivery.attempts[0].started_at >= due
    assert PIN in twilio.sent[0]["body"]
    logs = processes.stop()
    assert "delivery scheduled" in logs
    assert PIN not in logs
    ledger.engine.dispose()
