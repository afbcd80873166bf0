"""A hotel group's card queue: two Seam workspaces in SEAM_WORKSPACES_FILE, each with its own
key, and no SEAM_API_KEY at all. Each card's encoders are listed, and the card is encoded,
checked and assigned, with the key of the workspace the card is in; the Seam stand-in tells
which key each request was made with, and answers a key of another workspace as Seam does
(not found). The cards' flags come from processing real card events of each workspace."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.context import Context
from app.events.processing import process_event
from app.ledger.batch import NewEvent
from app.ledger.console import ConsoleStore
from app.ledger.scope import EVERYWHERE
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.conftest import provider_env
from tests.console.support import console_env, sign_in
from tests.events.test_pipeline import CARD_ID

HOTEL_A = "2f8e6c1a-0b4d-4e7f-9a3c-5d6e7f809a1b"
HOTEL_B = "661025d3-c1d2-403c-83a8-af153aaedfbc"  # the samples' workspace
KEY_A = "seam_testkey_hotel_a"
KEY_B = "seam_testkey_hotel_b"
CARD_A = "a0a0a0a0-1111-4222-8333-444455556666"
GRANT_A = "a0a0a0a0-2222-4333-8444-555566667777"
GUEST_A = "a0a0a0a0-3333-4444-8555-666677778888"
ENCODER_A = "a0a0a0a0-4444-4555-8666-777788889999"
ENCODER_B = "681da2d6-4ac6-4b33-8c03-86281b761325"  # the samples' Front Desk Encoder
CARD_NUMBER = "7731-0042"
WORKSPACES = f"""
[workspaces."{HOTEL_A}"]
name = "Harbour Inn"
api_key_env = "SEAM_API_KEY_HARBOUR"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_HARBOUR"

[workspaces."{HOTEL_B}"]
name = "Hotel Lumière"
api_key_env = "SEAM_API_KEY_LUMIERE"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_LUMIERE"
"""


@dataclass(frozen=True)
class Cards:
    """The open card flag of each hotel."""

    a: int
    b: int


def sample(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SAMPLES / name).read_text())
    return loaded


def hotel_a_in_seam(seam: SeamStandin) -> None:
    """Hotel A's guest, their key card waiting for encoding, and hotel A's own encoder: copies
    of the samples in workspace A."""
    seam.put_access_method(
        {**sample("resources/access_method.card.json"), "access_method_id": CARD_A,
         "workspace_id": HOTEL_A}
    )  # fmt: skip
    seam.put_access_grant(
        {**sample("resources/access_grant.json"), "access_grant_id": GRANT_A,
         "access_grant_key": "harbour-7731", "display_name": "Morgan Blake, Room 12",
         "user_identity_id": GUEST_A, "access_method_ids": [CARD_A], "space_ids": [],
         "location_ids": [], "workspace_id": HOTEL_A}
    )  # fmt: skip
    seam.put_user_identity(
        {**sample("resources/user_identity.json"), "user_identity_id": GUEST_A,
         "user_identity_key": "guest-harbour", "full_name": "Morgan Blake",
         "display_name": "Morgan Blake", "workspace_id": HOTEL_A}
    )  # fmt: skip
    seam.put_acs_encoder(
        {**sample("resources/acs_encoder.front_desk.json"), "acs_encoder_id": ENCODER_A,
         "display_name": "Harbour Lobby Encoder", "workspace_id": HOTEL_A}
    )  # fmt: skip


@pytest.fixture
def group_env(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> dict[str, str]:
    """Both hotels' keys from SEAM_WORKSPACES_FILE; SEAM_API_KEY and SEAM_WEBHOOK_SECRET unset."""
    hotel_a_in_seam(seam)
    seam.add_workspace(HOTEL_A, KEY_A)
    seam.add_workspace(HOTEL_B, KEY_B)
    (tmp_path / "workspaces.toml").write_text(WORKSPACES, encoding="utf-8")
    env = {
        **provider_env(seam, twilio, sendgrid),
        **console_env(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SEAM_WORKSPACES_FILE": str(tmp_path / "workspaces.toml"),
        "SEAM_API_KEY_HARBOUR": KEY_A,
        "SEAM_API_KEY_LUMIERE": KEY_B,
        "SEAM_WEBHOOK_SECRET_HARBOUR": "whsec_" + "QUJD" * 8,
        "SEAM_WEBHOOK_SECRET_LUMIERE": "whsec_" + "REVG" * 8,
        "CREDENTIAL_HASH_KEY": "hotel-group-fingerprint-key-0123456789",
    }
    del env["SEAM_API_KEY"], env["SEAM_WEBHOOK_SECRET"]
    return env


def card_event(ledger: Ledger, workspace_id: str, access_method_id: str, grant_id: str) -> int:
    """Record a card_encoding_required event of `workspace_id`, as its webhook would."""
    recorded = ledger.record_event(
        NewEvent(
            svix_id=None,
            seam_event_id=f"event-{access_method_id}",
            event_type="access_method.card_encoding_required",
            workspace_id=workspace_id,
            access_method_id=access_method_id,
            access_grant_ids=(grant_id,),
        )
    )
    return recorded.event_id


@pytest.fixture
def cards(group_env: dict[str, str], ledger: Ledger) -> Cards:
    """Each hotel's card flagged by processing its event, in a context with only the
    workspaces' keys."""
    services = Context.from_settings(load_settings(group_env), ledger)
    process_event(services, card_event(ledger, HOTEL_A, CARD_A, GRANT_A))
    process_event(
        services, card_event(ledger, HOTEL_B, CARD_ID, "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b")
    )
    flags = {
        f.access_method_id: f.id for f in ConsoleStore(ledger.engine).open_flag_list(EVERYWHERE)
    }
    return Cards(a=flags[CARD_A], b=flags[CARD_ID])


@pytest.fixture
def desk(group_env: dict[str, str], ledger: Ledger) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(group_env), ledger=ledger)) as client:
        yield client


def paths(seam: SeamStandin, key: str, path: str) -> int:
    return len(seam.requests_with_key(key, path))


def test_each_card_lists_the_encoders_of_its_own_workspace(
    desk: TestClient, cards: Cards, seam: SeamStandin
) -> None:
    """Hotel A's card offers hotel A's encoder only, hotel B's card hotel B's only; each list
    was asked with that hotel's key, none with a default key."""
    sign_in(desk)
    page_a = desk.get(f"/ops/cards/{cards.a}").text
    page_b = desk.get(f"/ops/cards/{cards.b}").text

    assert "Harbour Lobby Encoder" in page_a
    assert "Front Desk Encoder" not in page_a
    assert "Front Desk Encoder" in page_b
    assert "Harbour Lobby Encoder" not in page_b
    assert paths(seam, KEY_A, "/acs/encoders/list") == 1
    assert paths(seam, KEY_B, "/acs/encoders/list") == 1
    assert seam.requests_with_key(seam.api_key) == []


def test_a_card_of_workspace_b_is_encoded_with_bs_key(
    desk: TestClient, cards: Cards, seam: SeamStandin, ledger: Ledger
) -> None:
    """Encoding hotel B's card calls Seam with B's key, never A's; it succeeds and closes B's
    flag only."""
    token = sign_in(desk)
    page = desk.post(
        f"/ops/cards/{cards.b}/encode", data={"csrf_token": token, "acs_encoder_id": ENCODER_B}
    )

    assert "<strong>success</strong>" in page.text
    assert paths(seam, KEY_B, "/access_methods/encode") == 1
    assert paths(seam, KEY_A, "/access_methods/encode") == 0
    assert seam.requests_with_key(seam.api_key) == []
    still_open = ConsoleStore(ledger.engine).open_flag_list(EVERYWHERE)
    assert [f.id for f in still_open] == [cards.a]


def test_a_pending_encode_is_checked_with_its_cards_key(
    desk: TestClient, cards: Cards, seam: SeamStandin
) -> None:
    """Hotel A's encode left pending is checked again with A's key (B's key would not find
    A's action attempt), and the check finishes it."""
    token = sign_in(desk)
    seam.hold_encoder(ENCODER_A)
    page = desk.post(
        f"/ops/cards/{cards.a}/encode", data={"csrf_token": token, "acs_encoder_id": ENCODER_A}
    )
    assert "<strong>pending</strong>" in page.text
    attempt = re.search(r'name="action_attempt_id" value="([^"]+)"', page.text)
    assert attempt is not None

    seam.hold_encoder(ENCODER_A, held=False)
    page = desk.post(
        f"/ops/cards/{cards.a}/check",
        data={"csrf_token": token, "action_attempt_id": attempt.group(1)},
    )
    assert "<strong>success</strong>" in page.text
    assert paths(seam, KEY_A, "/action_attempts/get") >= 1
    assert paths(seam, KEY_B, "/action_attempts/get") == 0
    assert paths(seam, KEY_B, "/access_methods/encode") == 0


def test_a_card_to_assign_is_assigned_with_its_cards_key(
    desk: TestClient, cards: Cards, seam: SeamStandin, ledger: Ledger
) -> None:
    """Hotel A's card waiting for a pre-registered card is assigned by its number with A's
    key, and Seam issues it."""
    card = seam.get("access_method", CARD_A)
    assert card is not None
    seam.put_access_method({**card, "is_encoding_required": False, "is_assignment_required": True})
    seam.register_card(CARD_NUMBER.replace("-", ""))
    token = sign_in(desk)

    page = desk.post(
        f"/ops/cards/{cards.a}/assign", data={"csrf_token": token, "card_number": CARD_NUMBER}
    )

    assert "<strong>success</strong>" in page.text, page.text
    assert paths(seam, KEY_A, "/access_methods/assign_card") == 1
    assert paths(seam, KEY_B, "/access_methods/assign_card") == 0
    issued = seam.get("access_method", CARD_A)
    assert issued is not None
    assert issued["is_issued"] is True


def test_a_card_of_a_workspace_with_no_key_says_which_setting_is_missing(
    desk: TestClient, cards: Cards, seam: SeamStandin, ledger: Ledger
) -> None:
    """A card whose workspace the file does not list (and no SEAM_API_KEY): the encode is
    refused before Seam is asked, and the page and the audit log say which setting is missing,
    not that Seam is down."""
    stray = card_event(ledger, "ws-not-in-the-file", "stray-card", "stray-grant")
    flag_id, _ = ledger.open_flag(
        "stray-card", reason="card_encoding_required", access_grant_id=None, guest_name=None,
        event_id=stray,
    )  # fmt: skip
    token = sign_in(desk)
    before = len(seam.requests)

    page = desk.post(
        f"/ops/cards/{flag_id}/encode", data={"csrf_token": token, "acs_encoder_id": ENCODER_A}
    )

    assert "ws-not-in-the-file is not in SEAM_WORKSPACES_FILE" in page.text
    assert "could not be reached" not in page.text
    assert len(seam.requests) == before
    [entry] = [e for e in ConsoleStore(ledger.engine).audit_entries() if e.action == "encode"]
    assert entry.outcome == "error"
    assert "SEAM_API_KEY is not set" in (entry.detail or "")


def test_the_pms_api_encodes_a_card_with_its_workspaces_key(
    group_env: dict[str, str], cards: Cards, seam: SeamStandin, ledger: Ledger, tmp_path: Path
) -> None:
    """/api/v1's encoder list and encode (a desk token of the group) ask Seam with the key of
    the card's workspace, as the console does: hotel B's card with B's key, never A's."""
    (tmp_path / "access.toml").write_text(
        '[tokens.pms-group]\nrole = "desk"\neverywhere = true\n', encoding="utf-8"
    )
    token = "pms-group-token-0123456789abcdef"
    env = {
        **group_env,
        "API_TOKENS": f"pms-group:{token}",
        "ACCESS_FILE": str(tmp_path / "access.toml"),
    }
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(load_settings(env), ledger=ledger)) as api:
        listed = api.get(f"/api/v1/flags/{cards.b}/encoders", headers=headers)
        assert listed.status_code == 200, listed.text
        listed_ids = [e["acs_encoder_id"] for e in listed.json()["encoders"]]
        assert ENCODER_B in listed_ids
        assert ENCODER_A not in listed_ids
        answer = api.post(
            f"/api/v1/flags/{cards.b}/encode", headers=headers, json={"acs_encoder_id": ENCODER_B}
        )

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "success"
    assert paths(seam, KEY_B, "/acs/encoders/list") == 1
    assert paths(seam, KEY_B, "/access_methods/encode") == 1
    assert paths(seam, KEY_A, "/access_methods/encode") == 0
    assert seam.requests_with_key(seam.api_key) == []
