"""What an access method's errors, warnings and pending mutations mean (spec/seam's
descriptions), and card assignment: a change in progress holds the guest's message until Seam
has finished, an error reaches the front desk once, a card that needs a card assigned is
flagged to the front desk."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.context import Context
from app.events.processing import process_event
from app.events.tries import handle_event
from app.ledger.models import Delivery, DeliveryStatus, EventStatus, FlagStatus, utcnow
from app.ledger.store import Ledger
from app.messages.kinds import MessageKind
from app.observability.masking import mask_destination
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES
from tests.events.test_pipeline import (
    CARD_ID,
    CODE_ID,
    PIN,
    deliveries,
    record,
    run,
    set_method,
)


@pytest.fixture(autouse=True)
def distinctive_pin(seam: SeamStandin) -> None:
    """A PIN no other text could contain by chance, so 'not in' assertions mean something."""
    set_method(seam, CODE_ID, code=PIN)


def mutation(code: str) -> dict[str, Any]:
    devices = {"device_ids": ["2b6e7a1c-4d3f-4e8a-9c0b-1f2e3d4c5b6a"]}
    return {"mutation_code": code, "message": "in progress", "created_at": "2025-06-16T16:54:31Z",
            "from": devices, "to": devices}  # fmt: skip


def problem(kind: str, code: str) -> dict[str, Any]:
    return {f"{kind}_code": code, "message": "Seam says so", "created_at": "2025-06-16T16:54:31Z"}


def event_row(services: Context, event_id: int) -> tuple[str, int, str]:
    event = services.ledger.get_event(event_id)
    assert event is not None
    return event.status, event.attempts, event.detail or ""


@pytest.mark.parametrize("code", ["provisioning_access", "revoking_access", "something_new"])
def test_a_credential_being_reprogrammed_is_held_then_sent_once_done(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, code: str
) -> None:
    """While Seam re-programs the code nothing goes out and the event is looked at again later;
    once Seam has finished, the same event sends the code, once."""
    set_method(seam, CODE_ID, pending_mutations=[mutation(code)])
    event = record(services, "access_method.issued.code")
    outcome = handle_event(services, event)

    assert outcome.status == EventStatus.RECEIVED
    assert twilio.sent == []
    status, attempts, detail = event_row(services, event)
    assert (status, attempts) == (EventStatus.RECEIVED, 1)
    assert "re-programming" in detail

    set_method(seam, CODE_ID, pending_mutations=[])
    run(services, event)
    run(services, event)

    assert len(twilio.sent) == 1
    assert PIN in twilio.sent[0]["body"]


def test_a_change_in_progress_holds_what_was_already_pending(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """Deliveries planned before the change began are held, not sent, while it lasts."""
    process_event(services, record(services, "access_method.issued.code"))
    set_method(seam, CODE_ID, pending_mutations=[mutation("provisioning_access")])
    process_event(services, record(services, "access_method.reissued.backup_code"))

    assert {d.status for d in deliveries(services)} == {DeliveryStatus.HELD}
    assert twilio.sent == []


def test_updating_access_times_does_not_hold(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A change of times only (the code stays) lets the code go out."""
    set_method(seam, CODE_ID, pending_mutations=[mutation("updating_access_times")],
               warnings=[problem("warning", "updating_access_times")])  # fmt: skip
    run(services, record(services, "access_method.issued.code"))

    assert len(twilio.sent) == 1


def test_being_deleted_holds_and_the_deletion_cancels(
    services: Context, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """A key Seam is deleting is not sent; its deletion then cancels what waits."""
    set_method(seam, CODE_ID, warnings=[problem("warning", "being_deleted")])
    issued = record(services, "access_method.issued.code")
    handle_event(services, issued)
    seam.delete_access_method(CODE_ID)
    run(services, record(services, "access_method.deleted"))
    run(services, issued)

    assert twilio.sent == []
    assert event_row(services, issued)[0] == EventStatus.PROCESSED


def test_an_unexplained_error_tells_the_front_desk_once(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """An error code no event announces reaches the front desk once, however many events read
    it; the guest's code still goes out (an error is news, not a hold)."""
    set_method(seam, CODE_ID, errors=[problem("error", "access_not_provisioned")])
    run(services, record(services, "access_method.issued.code"))
    run(services, record(services, "access_method.issued.code", event_id="again"))

    desk = [m for m in sendgrid.sent if m["personalizations"][0]["to"][0]["email"]
            == "frontdesk@hotel.example"]  # fmt: skip
    assert len(desk) == 1
    body = next(p["value"] for p in desk[0]["content"] if p["type"] == "text/plain")
    assert "access_not_provisioned" in body
    assert PIN not in body
    assert len(twilio.sent) == 1


def test_failed_to_issue_error_and_event_are_one_alert(
    services: Context, seam: SeamStandin, sendgrid: SendGridStandin
) -> None:
    """Seam's failed_to_issue error on the access method and its failed_to_issue event are the
    same news: one front-desk email."""
    set_method(seam, CODE_ID, is_issued=False, code=None,
               errors=[problem("error", "failed_to_issue")])  # fmt: skip
    run(services, record(services, "access_method.revoked"))
    run(services, record(services, "access_method.failed_to_issue"))

    assert len(sendgrid.sent) == 1
    assert [d.kind for d in deliveries(services)] == ["front_desk_issue_failed"]


def test_a_card_to_assign_is_flagged_on_creation_once(
    services: Context, seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A card access method that needs a card assigned opens one front-desk flag (reason
    card_assignment_required) and one email saying so, whatever the duplicates; its issued
    event closes the flag."""
    set_method(seam, CARD_ID, is_issued=False, issued_at=None, is_encoding_required=False,
               is_assignment_required=True, is_ready_for_assignment=True)  # fmt: skip
    created = record(services, "access_method.created.card")
    run(services, created)
    run(services, created)
    run(services, record(services, "access_method.card_encoding_required"))

    [flag] = services.ledger.flags(CARD_ID)
    assert (flag.reason, flag.status) == ("card_assignment_required", FlagStatus.OPEN)
    [mail] = sendgrid.sent
    assert "assign" in mail["subject"].lower()
    assert twilio.sent == []

    set_method(seam, CARD_ID, is_issued=True, is_assignment_required=False)
    run(services, record(services, "access_method.issued.card"))
    assert [f.status for f in services.ledger.flags(CARD_ID)] == [FlagStatus.CLOSED]


def test_a_created_code_sends_nothing_yet(services: Context, twilio: TwilioStandin) -> None:
    """access_method.created for a code plans nothing: its issued event will."""
    event = record(services, "access_method.created.card", access_method_id=CODE_ID)
    run(services, event)

    assert twilio.sent == []
    assert deliveries(services) == []
    assert event_row(services, event)[0] == EventStatus.PROCESSED


def test_a_held_event_comes_back_to_the_sweeper_after_its_backoff(
    services: Context, seam: SeamStandin
) -> None:
    """An event held for a change in progress is unfinished with a retry time, which the
    sweeper's query returns once due."""
    set_method(seam, CODE_ID, pending_mutations=[mutation("revoking_access")])
    event = record(services, "access_method.issued.code")
    handle_event(services, event)
    with services.ledger.engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET queued_at = :then, next_attempt_at = :then WHERE id = :id"),
            {"then": utcnow() - timedelta(hours=1), "id": event},
        )

    assert event in services.ledger.stale_event_ids(utcnow(), utcnow(), 10)


HOTEL_DESK = "desk@lumiere.example"


def test_an_unexplained_error_is_planned_for_the_hotels_own_desk(
    settings_env: dict[str, str], ledger: Ledger, seam: SeamStandin, sendgrid: SendGridStandin,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A hotel with its own front desk (properties.toml): the alert of Seam's error is planned
    for that desk, as a card flag or a late-key alert is (the ledger's destination, which the
    console searches), and sent there; FRONT_DESK_EMAIL gets nothing."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    workspace = seam.get("access_method", CODE_ID)["workspace_id"]  # type: ignore[index]
    (templates / "properties.toml").write_text(
        f'[workspaces."{workspace}"]\nfront_desk_email = "{HOTEL_DESK}"\n', encoding="utf-8"
    )
    services = Context.from_settings(
        load_settings({**settings_env, "TEMPLATES_DIR": str(templates)}), ledger
    )
    set_method(seam, CODE_ID, errors=[problem("error", "access_not_provisioned")])
    run(services, record(services, "access_method.issued.code"))

    with Session(ledger.engine) as session:
        [alert] = session.scalars(
            select(Delivery).where(Delivery.kind == MessageKind.FRONT_DESK_KEY_ERROR)
        ).all()
    assert alert.planned_destination_masked == mask_destination(HOTEL_DESK)
    to = [m["personalizations"][0]["to"][0]["email"] for m in sendgrid.sent]
    assert HOTEL_DESK in to
    assert "frontdesk@hotel.example" not in to
