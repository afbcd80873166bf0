"""The card queue's cards to assign (access systems with pre-registered cards): listed apart
from cards to encode, assigned by number or by scanning at an encoder, with the same result
handling as encoding. Against the Seam stand-in through the official SDK; the card's flag
comes from processing a real access_method.created event."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from app.context import Context
from app.events.processing import process_event
from app.ledger.console import ConsoleStore
from app.ledger.models import FrontDeskFlag
from app.ledger.scope import EVERYWHERE
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.web.main import create_app
from tests.console.support import console_env, sign_in
from tests.events.test_pipeline import CARD_ID, record, set_method

FRONT_DESK_ENCODER = "681da2d6-4ac6-4b33-8c03-86281b761325"
CARD_NUMBER = "1044-2233-9087"


@pytest.fixture
def desk(services: Context, settings_env: dict[str, str], redis_url: str) -> Iterator[TestClient]:
    settings = load_settings({**settings_env, "REDIS_URL": redis_url, **console_env()})
    with TestClient(create_app(settings, ledger=services.ledger)) as client:
        yield client


@pytest.fixture
def flag(services: Context, seam: SeamStandin) -> FrontDeskFlag:
    """The sample card, waiting for a card to be assigned, flagged by its created event."""
    set_method(seam, CARD_ID, is_issued=False, issued_at=None, is_encoding_required=False,
               is_assignment_required=True, is_ready_for_assignment=True)  # fmt: skip
    process_event(services, record(services, "access_method.created.card"))
    [found] = ConsoleStore(services.ledger.engine).open_flag_list(EVERYWHERE)
    return found


def test_the_queue_lists_cards_to_assign_beside_cards_to_encode(
    desk: TestClient, flag: FrontDeskFlag
) -> None:
    """The queue has both sections; the card waiting for assignment is under "Cards to
    assign" and offers assignment, not encoding."""
    sign_in(desk)
    page = desk.get("/ops/cards").text

    encode_part, assign_part = page.split("<h2>Cards to assign</h2>")
    assert "No card is waiting to be encoded." in encode_part
    assert f'href="/ops/cards/{flag.id}">Assign a card…' in assign_part
    card = desk.get(f"/ops/cards/{flag.id}").text
    assert "Assign card" in card
    assert "Scan and assign" in card
    assert "Encode card" not in card


def test_assigning_by_number_closes_the_flag_and_audits_no_number(
    desk: TestClient, services: Context, seam: SeamStandin, flag: FrontDeskFlag
) -> None:
    """A wrong number is Seam's credential_not_found with what to do; the registered number
    assigns the card, Seam issues it, its flag closes; the audit log shows only the number's
    last four characters."""
    token = sign_in(desk)
    wrong = desk.post(f"/ops/cards/{flag.id}/assign",
                      data={"csrf_token": token, "card_number": "5550001"})  # fmt: skip
    assert "credential not found" in wrong.text
    assert "check the number" in wrong.text
    seam.register_card(CARD_NUMBER.replace("-", ""))

    page = desk.post(f"/ops/cards/{flag.id}/assign",
                     data={"csrf_token": token, "card_number": CARD_NUMBER})  # fmt: skip

    assert "<strong>success</strong>" in page.text
    store = ConsoleStore(services.ledger.engine)
    assert store.open_flag_list(EVERYWHERE) == []
    method = seam.get("access_method", CARD_ID)
    assert method is not None
    assert method["is_issued"] is True
    details = " ".join(e.detail or "" for e in store.audit_entries())
    assert "…9087" in details
    assert "10442233" not in details
    assert [(e.action, e.outcome) for e in store.audit_entries()][:2] == [
        ("assign", "success"), ("assign", "credential_not_found")]  # fmt: skip


def test_a_card_number_must_be_letters_and_digits(desk: TestClient, flag: FrontDeskFlag) -> None:
    """Anything but letters, digits, spaces and dashes is refused before Seam is asked."""
    token = sign_in(desk)
    for typed in ("", "12;34", "x" * 65):
        refused = desk.post(f"/ops/cards/{flag.id}/assign",
                            data={"csrf_token": token, "card_number": typed})  # fmt: skip
        assert refused.status_code == 400


def test_a_pending_scan_can_be_checked_until_it_is_done(
    desk: TestClient, services: Context, seam: SeamStandin, flag: FrontDeskFlag
) -> None:
    """A scan with no card on the encoder in time is pending with a button to check again;
    checking once it has read the card says it is assigned and the card leaves the queue."""
    token = sign_in(desk)
    seam.hold_encoder(FRONT_DESK_ENCODER)
    page = desk.post(f"/ops/cards/{flag.id}/scan",
                     data={"csrf_token": token, "acs_encoder_id": FRONT_DESK_ENCODER})  # fmt: skip
    assert "<strong>pending</strong>" in page.text
    attempt = re.search(r'name="action_attempt_id" value="([^"]+)"', page.text)
    assert attempt is not None

    seam.hold_encoder(FRONT_DESK_ENCODER, held=False)
    page = desk.post(f"/ops/cards/{flag.id}/check",
                     data={"csrf_token": token, "action_attempt_id": attempt.group(1)})  # fmt: skip

    assert "<strong>success</strong>" in page.text
    assert "The card is assigned" in page.text
    store = ConsoleStore(services.ledger.engine)
    assert store.open_flag_list(EVERYWHERE) == []
    actions = [(e.action, e.outcome) for e in store.audit_entries()]
    assert ("scan", "pending") in actions
    assert ("assign_check", "success") in actions


def test_a_scan_without_a_card_says_what_to_do(
    desk: TestClient, seam: SeamStandin, services: Context, flag: FrontDeskFlag
) -> None:
    """Seam's no_credential_on_encoder is shown with advice, and the card stays queued."""
    token = sign_in(desk)
    seam.fail_next_encode(FRONT_DESK_ENCODER, "no_credential_on_encoder")
    page = desk.post(f"/ops/cards/{flag.id}/scan",
                     data={"csrf_token": token, "acs_encoder_id": FRONT_DESK_ENCODER})  # fmt: skip

    assert "no credential on encoder" in page.text
    assert "place the card on it" in page.text
    assert ConsoleStore(services.ledger.engine).open_flag_list(EVERYWHERE) != []
