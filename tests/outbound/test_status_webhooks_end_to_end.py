"""Status webhooks to a PMS through real processes: a signed Seam webhook becomes an SMS (the
Twilio stand-in, through the SDK), Twilio's signed status callback says it was delivered, and the
PMS (a real HTTP server here, checking every signature with svix) hears delivery.sent and
delivery.delivered, signed; a PMS that answers 500 twice gets the same webhook again until it
takes it, and every try is in the ledger."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from app.console.openapi import webhook_schema
from app.ledger.outbox import (
    HookEvent,
    HookState,
)
from app.ledger.scope import EVERYWHERE
from app.ledger.store import Ledger
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import provider_env
from tests.outbound.receiver import SECRET, Receiver, receiving
from tests.processes import Processes, free_port, post_sample, running_web, wait_for

pytestmark = pytest.mark.e2e

PMS_TOKEN = "pms-token-for-the-end-to-end-0123456789"
REPORTS_TOKEN = "reports-token-read-only-0123456789"
ACCESS = """
[tokens.pms]
role = "desk"
everywhere = true

[tokens.reports]
role = "viewer"
everywhere = true
"""


@pytest.fixture
def pms() -> Iterator[Receiver]:
    with receiving(answers=[500, 500]) as receiver:
        yield receiver


@pytest.fixture
def service(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
    pms: Receiver,
) -> Iterator[tuple[str, Processes]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
        "DELIVERY_CHANNELS": "sms",
        "PUBLIC_BASE_URL": base,
        "STATUS_WEBHOOK_URL": pms.url,
        "STATUS_WEBHOOK_SECRET": SECRET,
        "STATUS_WEBHOOK_POLL_SECONDS": "0.5",
        "STATUS_WEBHOOK_RETRY_SECONDS": "0.5",
        "API_TOKENS": f"pms:{PMS_TOKEN},reports:{REPORTS_TOKEN}",
        "ACCESS_FILE": str(tmp_path / "access.toml"),
    }
    (tmp_path / "access.toml").write_text(ACCESS, encoding="utf-8")
    with running_web(env, tmp_path, port) as (base, processes):
        processes.start("worker", "worker", "--concurrency", "2", "--beat")
        yield base, processes


def test_the_pms_hears_sent_then_delivered_signed_and_retried_until_taken(
    service: tuple[str, Processes],
    twilio: TwilioStandin,
    pms: Receiver,
    clean_postgres_url: str,
) -> None:
    """The guest's SMS goes out and Twilio reports it delivered: the PMS gets delivery.sent
    (after answering 500 twice: three tries of one webhook-id) and delivery.delivered, each
    with a signature svix verifies, naming the delivery and the masked phone, never the PIN."""
    base, processes = service
    assert post_sample(base, "access_method.issued.code", "msg_pms_1").status_code == 200
    assert wait_for(lambda: len(twilio.sent) == 1, 60)
    [sms] = twilio.sent
    assert wait_for(lambda: pms.types() == ["delivery.sent"], 60), pms.requests

    assert twilio.report_status(sms["sid"], "delivered") == 200
    assert wait_for(lambda: pms.types() == ["delivery.sent", "delivery.delivered"], 60)

    sent, delivered = pms.verified
    assert pms.refused == 0
    assert [status for _, status in pms.requests] == [500, 500, 200, 200]
    first_id = pms.requests[0][0]
    assert [webhook_id for webhook_id, _ in pms.requests[:3]] == [first_id] * 3
    assert pms.requests[3][0] != first_id
    for body in pms.verified:  # what the OpenAPI document's webhooks section says
        Draft202012Validator(webhook_schema(HookEvent(body["type"]))).validate(body)
    assert sent["data"]["status"] == "sent"
    assert delivered["data"]["status"] == "delivered"
    assert sent["data"]["delivery_id"] == delivered["data"]["delivery_id"]
    assert sent["data"]["channel"] == "sms"
    assert sent["data"]["recipient"]
    assert "+15555550123" not in json.dumps(pms.verified)
    codes = re.findall(r"\b\d{4,}\b", sms["body"])  # the PIN the guest got
    assert codes
    for body in pms.verified:
        assert not any(code in json.dumps(body["data"]) for code in codes)

    ledger = Ledger.from_url(clean_postgres_url)
    hooks = ledger.recent_status_webhooks(EVERYWHERE)
    by_type = {hook.event_type: (hook, tries) for hook, tries in hooks}
    hook, tries = by_type["delivery.sent"]
    assert hook.state == HookState.DELIVERED
    assert [t.status_code for t in tries] == [500, 500, 200]
    assert hook.message_id == first_id
    assert by_type["delivery.delivered"][0].state == HookState.DELIVERED
    logs = processes.stop()
    assert "status webhook delivered" in logs
    assert "+15555550123" not in logs


def test_the_pms_resends_a_key_through_api_v1_and_hears_it_sent(
    service: tuple[str, Processes], twilio: TwilioStandin, pms: Receiver
) -> None:
    """The PMS, with its desk token, asks /api/v1 of the running web process to resend the
    guest's key: the worker sends the SMS again (the PIN Seam has), once for one
    Idempotency-Key, and the PMS hears a second delivery.sent; a read-only token is refused."""
    base, _ = service
    assert post_sample(base, "access_method.issued.code", "msg_pms_2").status_code == 200
    assert wait_for(lambda: len(twilio.sent) == 1, 60)
    assert wait_for(lambda: pms.types() == ["delivery.sent"], 60), pms.requests
    desk = {"Authorization": f"Bearer {PMS_TOKEN}", "Idempotency-Key": "pms-resend-1"}
    [delivery] = httpx.get(f"{base}/api/v1/deliveries", headers=desk).json()["deliveries"]

    refused = httpx.post(
        f"{base}/api/v1/deliveries/{delivery['id']}/resend",
        headers={"Authorization": f"Bearer {REPORTS_TOKEN}"},
        json={"reason": "not_received"},
    )
    assert refused.status_code == 403
    for _ in range(2):  # the same Idempotency-Key twice: one resend
        answer = httpx.post(
            f"{base}/api/v1/deliveries/{delivery['id']}/resend",
            headers=desk,
            json={"reason": "not_received", "channel": "sms"},
        )
        assert answer.status_code == 202, answer.text

    assert wait_for(lambda: len(twilio.sent) == 2, 60)
    assert wait_for(lambda: pms.types() == ["delivery.sent", "delivery.sent"], 60), pms.types()
    first, again = twilio.sent
    assert again["to"] == first["to"]
    assert again["body"] == first["body"]
    assert pms.verified[1]["data"]["delivery_id"] != delivery["id"]
    assert not wait_for(lambda: len(twilio.sent) > 2, 3)
