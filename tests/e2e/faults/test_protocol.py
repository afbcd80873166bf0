"""The delivery protocol under faults, with real processes: web, workers and beat on
PostgreSQL and a Redis of the test's own; Seam and Twilio as stand-ins whose delays the tests
turn. Each ends with the guest holding exactly one message.

- A worker that outlives its lease because Seam is slow keeps its claim (the heartbeat): the
  sweeper does not hand the PIN to a second worker, and the PIN goes once.
- A worker killed mid-send (SIGKILL) is picked up well within 30 s of its last heartbeat on
  the default lease, heartbeat and sweep settings, and the SMS is not sent again.
- A worker killed after recording a failure but before planning its follow-up: the fallback
  (or the front desk's alert) still goes out, once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ledger.models import Delivery, DeliveryStatus
from app.ledger.store import Ledger
from app.messages.kinds import MessageKind
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.e2e.faults.test_faults import deliveries, settled
from tests.processes import RedisServer, post_sample, running_web, wait_for

pytestmark = pytest.mark.e2e

PIN = "358172"
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
GUEST_ID = "0d6e1c3b-7e0f-4b59-9d1a-2f3b7c9a8e41"
INVALID_NUMBER = "+15005550001"  # Twilio answers 21211: a permanent failure
UNAVAILABLE = {"code": 20503, "message": "Service unavailable", "status": 503}


@pytest.fixture
def env(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    broker: RedisServer,
) -> dict[str, str]:
    """SMS only (so an email is always a follow-up), on the default lease and heartbeat."""
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    return {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": broker.url,
        "DELIVERY_CHANNELS": "sms",
    }


def sms_delivery(ledger: Ledger) -> Delivery | None:
    return next((d for d in deliveries(ledger) if d.channel == "sms"), None)


def twilio_posts(twilio: TwilioStandin) -> int:
    return sum(1 for r in twilio.requests if r.method == "POST")


def test_a_worker_slowed_past_its_lease_keeps_its_claim_and_sends_once(
    env: dict[str, str],
    tmp_path: Path,
    seam: SeamStandin,
    twilio: TwilioStandin,
    ledger: Ledger,
) -> None:
    """A Twilio 503, then Seam slow on every read of the retry: the retry holds the delivery
    twice as long as its lease, the sweeper runs every second, a second worker is idle, and
    still the guest gets one SMS."""
    slow = {
        **env,
        "PROVIDER_TIMEOUT_SECONDS": "5",
        "DELIVERY_LEASE_SECONDS": "8",
        "DELIVERY_HEARTBEAT_SECONDS": "2",
        "SWEEP_INTERVAL_SECONDS": "1",
    }
    with running_web(slow, tmp_path) as (base, processes):
        processes.start("worker-a", "worker", "--concurrency", "4")
        processes.start("worker-b", "worker", "--concurrency", "4", "--beat")
        twilio.fail_next(1, 503, UNAVAILABLE, method="POST")
        assert post_sample(base, "access_method.issued.code", "msg_p1", code=PIN).status_code == 200
        assert wait_for(lambda: twilio_posts(twilio) == 1, 60), "the first send never came"
        # Each of the retry's four Seam reads now takes 4 s (inside the 5 s timeout): about
        # 16 s of work under an 8 s lease.
        seam.latency = 4.0

        assert wait_for(lambda: len(twilio.sent) >= 1, 120), "the retry never sent"
        assert settled_sms(twilio, seconds=30)
        seam.latency = 0

        assert len(twilio.sent) == 1
        delivery = sms_delivery(ledger)
        assert delivery is not None
        assert delivery.status == DeliveryStatus.SENT


def test_sigkill_mid_send_is_picked_up_within_a_lease_and_a_sweep(
    env: dict[str, str],
    tmp_path: Path,
    twilio: TwilioStandin,
    ledger: Ledger,
) -> None:
    """With the default lease, heartbeat and sweep interval, a worker killed while Twilio holds
    its SMS is taken over well inside 30 s of its last heartbeat, and the SMS (which Twilio
    took) is found, not sent again."""
    with running_web(env, tmp_path) as (base, processes):
        processes.start("beat", "beat")
        processes.start("worker-a", "worker", "--concurrency", "4")
        twilio.latency = 3.0
        assert post_sample(base, "access_method.issued.code", "msg_p2", code=PIN).status_code == 200
        assert wait_for(lambda: twilio_posts(twilio) == 1, 60), "the SMS never reached Twilio"
        held = sms_delivery(ledger)
        assert held is not None
        assert held.lease_expires_at is not None

        processes.signal("worker-a", signal.SIGKILL, whole_group=True)
        killed_at = time.monotonic()
        processes.wait("worker-a", timeout=10)
        processes.start("worker-b", "worker", "--concurrency", "4")
        assert wait_for(lambda: len(twilio.sent) == 1, 10)  # Twilio finished the orphan
        twilio.latency = 0

        assert wait_for(lambda: _status(ledger) == DeliveryStatus.SENT, 120), _status(ledger)
        picked_up_after = time.monotonic() - killed_at
        print(f"\nSIGKILL mid-send: settled {picked_up_after:.1f} s after the kill")
        assert settled_sms(twilio, seconds=5)
        assert len(twilio.sent) == 1
        # Well inside the old 82 s: the lease (15 s) and a sweep (10 s), with room for load.
        assert picked_up_after < 45


@pytest.mark.parametrize("follow_up", ["fallback", "alert"])
def test_a_crash_between_a_failure_and_its_follow_up_loses_nothing(
    env: dict[str, str],
    tmp_path: Path,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    ledger: Ledger,
    clean_postgres_url: str,
    follow_up: str,
) -> None:
    """The SMS fails for good and the worker dies after recording the failure, while planning
    the guest's email fallback (or, with no email, the front desk's "guest without a key"
    alert): another worker still sends it, exactly once.

    The worker is stopped at that exact point by a row the test inserts and holds uncommitted
    where the follow-up will be written: the worker's insert waits on it; the test kills the
    worker while it waits, then lets go."""
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    no_email = {"email_address": None} if follow_up == "alert" else {}
    seam.put_user_identity({**guest, "phone_number": INVALID_NUMBER, **no_email})
    quick = {**env, "SWEEP_INTERVAL_SECONDS": "1"}
    with running_web(quick, tmp_path) as (base, processes):
        processes.start("beat", "beat")
        processes.start("worker-a", "worker", "--concurrency", "4")
        twilio.latency = 2.0
        assert post_sample(base, "access_method.issued.code", "msg_p3", code=PIN).status_code == 200
        assert wait_for(lambda: twilio_posts(twilio) == 1, 60), "the SMS never reached Twilio"
        sms = sms_delivery(ledger)
        assert sms is not None

        with _blocking_row(clean_postgres_url, sms, follow_up) as blocker:
            assert wait_for(lambda: _status(ledger) == DeliveryStatus.FAILED, 30)
            assert wait_for(lambda: _someone_waits(clean_postgres_url), 30)
            processes.signal("worker-a", signal.SIGKILL, whole_group=True)
            processes.wait("worker-a", timeout=10)
            blocker.rollback()
        twilio.latency = 0
        processes.start("worker-b", "worker", "--concurrency", "4")

        assert wait_for(lambda: len(sendgrid.sent) == 1, 90), "the follow-up never went out"
        assert settled(twilio, sendgrid, seconds=5)
        [email] = sendgrid.sent
        to = email["personalizations"][0]["to"][0]["email"]
        assert to == ("frontdesk@hotel.example" if follow_up == "alert" else guest["email_address"])
        assert twilio.sent == []  # 21211: refused, never accepted


def settled_sms(twilio: TwilioStandin, seconds: float) -> bool:
    """True if no further SMS reaches Twilio for `seconds` (so a duplicate would show)."""
    before = len(twilio.sent)
    return not wait_for(lambda: len(twilio.sent) != before, seconds)


def _status(ledger: Ledger) -> str | None:
    with Session(ledger.engine) as session:
        return session.scalar(select(Delivery.status).where(Delivery.channel == "sms"))


@contextmanager
def _blocking_row(
    database_url: str, sms: Delivery, follow_up: str
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An uncommitted delivery row with the unique key of the follow-up the worker will plan:
    the worker's insert waits for this transaction to end (rolled back by the caller, or on
    the way out)."""
    values = {
        "access_method_id": sms.access_method_id,
        "kind": MessageKind.FRONT_DESK_UNDELIVERED if follow_up == "alert" else sms.kind,
        "credential_fingerprint": sms.credential_fingerprint,
        "recipient": sms.recipient,
    }
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    connection = psycopg.connect(url)
    try:
        connection.execute(
            "INSERT INTO deliveries (access_method_id, kind, channel, credential_fingerprint,"
            " recipient, status, created_at, updated_at) VALUES (%(access_method_id)s,"
            " %(kind)s, 'email', %(credential_fingerprint)s, %(recipient)s, 'pending',"
            " now(), now())",
            values,
        )
        yield connection
    finally:
        connection.rollback()
        connection.close()


def _someone_waits(database_url: str) -> bool:
    """Whether a session of the database waits for a lock (the worker, on the blocking row)."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])
