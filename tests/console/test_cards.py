"""The card queue's encode when the encoder has not finished in time: the console says so,
offers to check again, and checking once the card is on the encoder finishes the job. Against
the Seam stand-in through the official SDK; the card's flag comes from processing a real
card_encoding_required event."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.context import Context
from app.events.processing import process_event
from app.ledger.console import ConsoleStore
from app.ledger.scope import EVERYWHERE
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.web.main import create_app
from tests.console.support import console_env, sign_in
from tests.events.test_pipeline import record

FRONT_DESK_ENCODER = "681da2d6-4ac6-4b33-8c03-86281b761325"


@pytest.fixture
def desk(services: Context, settings_env: dict[str, str], redis_url: str) -> Iterator[TestClient]:
    settings = load_settings({**settings_env, "REDIS_URL": redis_url, **console_env()})
    with TestClient(create_app(settings, ledger=services.ledger)) as client:
        yield client


def test_a_pending_encode_can_be_checked_again_until_it_is_done(
    desk: TestClient, services: Context, seam: SeamStandin
) -> None:
    """No card on the encoder within the wait: "pending", with a button to check again; once
    the card is there, checking says it is encoded and the card leaves the queue. Both steps
    are in the audit log."""
    process_event(services, record(services, "access_method.card_encoding_required"))
    store = ConsoleStore(services.ledger.engine)
    [flag] = store.open_flag_list(EVERYWHERE)
    token = sign_in(desk)

    seam.hold_encoder(FRONT_DESK_ENCODER)
    page = desk.post(
        f"/ops/cards/{flag.id}/encode",
        data={"csrf_token": token, "acs_encoder_id": FRONT_DESK_ENCODER},
    )
    assert page.status_code == 200
    assert "<strong>pending</strong>" in page.text
    assert "Check the encoder again" in page.text
    attempt = re.search(r'name="action_attempt_id" value="([^"]+)"', page.text)
    assert attempt is not None
    assert store.open_flag_list(EVERYWHERE) != []

    seam.hold_encoder(FRONT_DESK_ENCODER, held=False)
    page = desk.post(
        f"/ops/cards/{flag.id}/check",
        data={"csrf_token": token, "action_attempt_id": attempt.group(1)},
    )
    assert "<strong>success</strong>" in page.text
    assert "Check the encoder again" not in page.text
    assert store.open_flag_list(EVERYWHERE) == []
    actions = [(e.action, e.outcome) for e in store.audit_entries()]
    assert ("encode", "pending") in actions
    assert ("encode_check", "success") in actions

    refused = desk.post(
        f"/ops/cards/{flag.id}/check", data={"csrf_token": token, "action_attempt_id": "x y"}
    )
    assert refused.status_code == 400
