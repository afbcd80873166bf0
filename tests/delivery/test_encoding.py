"""Encoding a guest's key card at a front-desk encoder: through the official `seam` SDK against
the Seam stand-in, with the ledger on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.context import Context
from app.delivery.encoding import encode_card, encoding_status, list_encoders
from app.errors import NotFound, TransientProviderError
from app.events.processing import process_event
from app.ledger.models import FlagStatus, utcnow
from app.standins.seam import SeamStandin
from tests.events.test_pipeline import CARD_ID, CODE_ID, record

FRONT_DESK = "681da2d6-4ac6-4b33-8c03-86281b761325"
BACK_OFFICE = "9b2f4c61-0d3e-4a8f-b7c5-1e6d2a9f3b80"
SERVER_ERROR = {"error": {"type": "internal_server_error", "message": "boom"}, "ok": False}


def card(seam: SeamStandin) -> dict[str, object]:
    found = seam.get("access_method", CARD_ID)
    assert found is not None
    return found


def test_lists_encoders_with_name_and_online_state(services: Context, seam: SeamStandin) -> None:
    """Both encoders are listed by id and name; one Seam reports removed is offline, and last."""
    removed = seam.get("acs_encoder", FRONT_DESK)
    assert removed is not None
    removed["errors"] = [
        {
            "error_code": "acs_encoder_removed",
            "message": "Encoder removed",
            "created_at": "2025-06-17T08:00:00.000Z",
        }
    ]
    seam.put_acs_encoder(removed)

    encoders = list_encoders(services.seam, CARD_ID)

    assert [(e.acs_encoder_id, e.display_name, e.is_online) for e in encoders] == [
        (BACK_OFFICE, "Back Office Encoder", True),
        (FRONT_DESK, "Front Desk Encoder", False),
    ]
    assert [error.error_code for error in encoders[1].errors] == ["acs_encoder_removed"]


def test_listing_for_a_deleted_access_method_says_not_found(
    services: Context, seam: SeamStandin
) -> None:
    """A card deleted in Seam has nothing to encode: NotFound, not an empty list."""
    seam.delete_access_method(CARD_ID)
    with pytest.raises(NotFound):
        list_encoders(services.seam, CARD_ID)


def test_encoding_issues_the_card_and_closes_the_front_desk_flag(
    services: Context, seam: SeamStandin
) -> None:
    """A successful encode issues the card in Seam, ends its encoding-required state, lists an
    access_method.issued event and closes the open front-desk flag."""
    process_event(services, record(services, "access_method.card_encoding_required"))
    [flag] = services.ledger.flags(CARD_ID)
    assert flag.status == FlagStatus.OPEN
    assert card(seam)["is_encoding_required"] is True

    result = encode_card(services.seam, services.ledger, CARD_ID, FRONT_DESK, actor="desk-anna")

    assert (result.status, result.error_type) == ("success", None)
    assert result.action_attempt_id
    assert result.message == "The card is encoded: hand it to the guest."
    stored = card(seam)
    assert (stored["is_issued"], stored["is_encoding_required"]) == (True, False)
    [flag] = services.ledger.flags(CARD_ID)
    assert flag.status == FlagStatus.CLOSED
    issued = services.seam.list_events(utcnow() - timedelta(minutes=1), ["access_method.issued"])
    assert [e.access_method_id for e in issued] == [CARD_ID]
    encode_calls = [r for r in seam.requests if r.path == "/access_methods/encode"]
    assert len(encode_calls) == 1


def test_offline_encoder_is_encoder_not_online(services: Context, seam: SeamStandin) -> None:
    """An encoder that is not online fails the attempt with Seam's encoder_not_online, shown
    as a result with advice; the card stays unissued."""
    seam.set_encoder_online(FRONT_DESK, False)

    result = encode_card(services.seam, services.ledger, CARD_ID, FRONT_DESK, actor="desk-anna")

    assert (result.status, result.error_type) == ("error", "encoder_not_online")
    assert result.action_attempt_id
    assert result.error_message == "The encoder is not online."
    assert "offline" in result.message
    assert card(seam)["is_issued"] is False


@pytest.mark.parametrize(
    "error_type", ["no_credential_on_encoder", "encoding_interrupted", "uncategorized_error"]
)
def test_encoder_errors_are_results(services: Context, seam: SeamStandin, error_type: str) -> None:
    """The errors Seam's sandbox can simulate on an encoder come back as results."""
    seam.fail_next_encode(BACK_OFFICE, error_type)

    result = encode_card(services.seam, services.ledger, CARD_ID, BACK_OFFICE, actor="desk-anna")

    assert (result.status, result.error_type) == ("error", error_type)
    assert card(seam)["is_issued"] is False


def test_unknown_encoder_is_a_result_not_an_exception(services: Context) -> None:
    """An encoder id Seam does not know is Seam's acs_encoder_not_found, as a result."""
    result = encode_card(
        services.seam, services.ledger, CARD_ID, "no-such-encoder", actor="desk-anna"
    )

    assert (result.status, result.error_type, result.action_attempt_id) == (
        "error",
        "acs_encoder_not_found",
        None,
    )
    assert "refresh the list" in result.message


def test_a_pin_code_is_not_encoded(services: Context, seam: SeamStandin) -> None:
    """Only a card can be encoded: a PIN code's access method is refused before Seam is asked."""
    result = encode_card(services.seam, services.ledger, CODE_ID, FRONT_DESK, actor="desk-anna")

    assert (result.status, result.error_type) == ("error", "not_a_card")
    assert not [r for r in seam.requests if r.path == "/access_methods/encode"]


def test_a_slow_encoder_is_pending_then_checked_again(services: Context, seam: SeamStandin) -> None:
    """The wait is bounded: an encoder still working answers pending with the attempt's id,
    and asking again once it is done gives the success."""
    seam.hold_encoder(FRONT_DESK)

    pending = encode_card(
        services.seam, services.ledger, CARD_ID, FRONT_DESK, actor="desk-anna", wait_seconds=0.3
    )

    assert pending.status == "pending"
    assert pending.action_attempt_id
    assert card(seam)["is_issued"] is False
    seam.hold_encoder(FRONT_DESK, held=False)
    done = encoding_status(services.seam, services.ledger, CARD_ID, pending.action_attempt_id)
    assert (done.status, done.action_attempt_id) == ("success", pending.action_attempt_id)
    assert card(seam)["is_issued"] is True


def test_seam_unreachable_raises(services: Context, seam: SeamStandin) -> None:
    """A Seam outage is an error to report, not an encoding result."""
    seam.fail_next(1, 503, SERVER_ERROR, method="POST", path="/access_methods/encode")

    with pytest.raises(TransientProviderError):
        encode_card(services.seam, services.ledger, CARD_ID, FRONT_DESK, actor="desk-anna")
    assert card(seam)["is_issued"] is False
