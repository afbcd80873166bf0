"""What each kind of message is: the properties the rest of keycourier decides by."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.events.kinds import Action, action_for
from app.messages.catalog import CREDENTIAL_OF, EMAIL_PARTS, GUEST_PARTS, MESSAGES
from app.messages.kinds import CREDENTIAL_KINDS, FRONT_DESK_KINDS, Addressee, MessageKind

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
# Not message folders: the shared email layout, the per-hotel settings, the ops team's guide.
NOT_MESSAGES = {"_layout.html", "properties.toml", "README.md"}


def test_the_stored_kinds_are_the_ledgers_strings() -> None:
    """The values are what deliveries.kind holds: renaming one would orphan stored rows."""
    assert sorted(MessageKind) == sorted(
        [
            "pin_code",
            "instant_key",
            "front_desk_card",
            "front_desk_undelivered",
            "front_desk_delivery_problem",
            "access_cancelled",
            "stay_times_changed",
            "card_ready",
            "front_desk_issue_delayed",
            "front_desk_issue_failed",
            "front_desk_card_assign",
            "front_desk_key_error",
            "front_desk_grant_incomplete",
            "front_desk_door_lost",
        ]
    )


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_has_its_templates_in_the_shipped_folder(kind: MessageKind) -> None:
    """Each template a kind is written from is shipped, in every language, with every part
    its reader needs (a guest: SMS and email; the front desk: email)."""
    for template in kind.templates:
        languages = [path for path in (SHIPPED / template).iterdir() if path.is_dir()]
        assert {path.name for path in languages} >= {"en", "fr"}
        parts = GUEST_PARTS if kind.is_for_guest else EMAIL_PARTS
        for language in languages:
            assert {path.name for path in language.iterdir()} >= set(parts), language


def test_the_shipped_folder_holds_only_the_kinds_templates() -> None:
    """Every message folder shipped is one a kind is written from: the catalog the check and
    the preview use is the kinds' templates, nothing else."""
    folders = {path.name for path in SHIPPED.iterdir()} - NOT_MESSAGES
    assert folders == set(MESSAGES)
    assert set(MESSAGES) == {template for kind in MessageKind for template in kind.templates}


def test_credential_kinds_are_exactly_the_guest_messages_for_code_and_mobile_key() -> None:
    """A PIN code and an Instant Key are the two credentials handed to a guest by message; a
    card is handed over at the desk and a cloud key needs no message."""
    assert set(CREDENTIAL_KINDS) == {
        MessageKind.for_mode("code"),
        MessageKind.for_mode("mobile_key"),
    }
    assert MessageKind.for_mode("code") is MessageKind.PIN_CODE
    assert MessageKind.for_mode("mobile_key") is MessageKind.INSTANT_KEY
    assert MessageKind.for_mode("card") is None
    assert MessageKind.for_mode("cloud_key") is None
    assert all(kind.is_for_guest for kind in CREDENTIAL_KINDS)


def test_no_front_desk_kind_carries_a_credential() -> None:
    """The front desk never sees a guest's PIN or Instant Key, so no template of theirs may
    show one (the check proves the template does not)."""
    assert FRONT_DESK_KINDS
    for kind in FRONT_DESK_KINDS:
        assert kind.addressee is Addressee.FRONT_DESK
        assert not kind.carries_credential
        assert not set(kind.templates) & set(CREDENTIAL_OF)


def test_the_credential_variable_is_the_one_the_template_must_show() -> None:
    """The catalog's 'body must show' variable comes from the kind: the PIN for pin_code and
    its code_changed variant, the link for instant_key, and none for any other message."""
    assert CREDENTIAL_OF == {
        "pin_code": "pin_code",
        "code_changed": "pin_code",
        "instant_key": "instant_key_url",
    }


def test_only_a_credential_falls_back() -> None:
    """A failed key tries the guest's other channel and then the front desk; a failed notice
    (cancelled, times changed, card ready) and a failed front-desk email do not."""
    assert {kind for kind in MessageKind if kind.may_fall_back} == set(CREDENTIAL_KINDS)


def test_problem_reports_are_front_desk_emails_written_without_seam() -> None:
    """The alerts that a guest's messages failed carry {{ problem }} and must go out when Seam
    cannot answer: they are written from the ledger, and are the only front-desk emails that
    are."""
    reports = {kind for kind in MessageKind if kind.reports_problem}
    assert reports == {MessageKind.FRONT_DESK_UNDELIVERED, MessageKind.FRONT_DESK_DELIVERY_PROBLEM}
    assert {kind for kind in FRONT_DESK_KINDS if not kind.reads_seam} == reports


def test_only_a_cancelled_key_is_told_to_a_guest_without_reading_seam() -> None:
    """The access method of a cancelled key is gone from Seam; every other guest message is
    written from what Seam says now."""
    guest_kinds = [kind for kind in MessageKind if kind.is_for_guest]
    assert [kind for kind in guest_kinds if not kind.reads_seam] == [MessageKind.ACCESS_CANCELLED]


def test_front_desk_emails_about_an_access_method_are_one_per_access_method() -> None:
    """A card to encode or assign, a late credential, Seam's errors on a key and a grant's
    problems are one email per access method (or grant), however many guests share it; every
    guest message and every problem report is one per guest."""
    per_method = {kind for kind in MessageKind if not kind.per_guest}
    assert per_method == {
        MessageKind.FRONT_DESK_CARD,
        MessageKind.FRONT_DESK_ISSUE_DELAYED,
        MessageKind.FRONT_DESK_ISSUE_FAILED,
        MessageKind.FRONT_DESK_CARD_ASSIGN,
        MessageKind.FRONT_DESK_KEY_ERROR,
        MessageKind.FRONT_DESK_GRANT_INCOMPLETE,
        MessageKind.FRONT_DESK_DOOR_LOST,
    }
    assert per_method <= set(FRONT_DESK_KINDS)


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("access_method.delay_in_issuing", MessageKind.FRONT_DESK_ISSUE_DELAYED),
        ("access_method.failed_to_issue", MessageKind.FRONT_DESK_ISSUE_FAILED),
    ],
)
def test_each_issuing_alert_answers_its_seam_event(event_type: str, kind: MessageKind) -> None:
    """The event that alerts the front desk names its alert, a front-desk email that is moot
    once the access method is issued."""
    assert action_for(event_type) is Action.ALERT_FRONT_DESK
    assert MessageKind.issuing_alert(event_type) is kind
    assert kind.is_issuing_alert
    assert not kind.is_for_guest


def test_only_the_issuing_events_have_an_alert() -> None:
    """Every event that alerts the front desk has an alert kind, and no other event has one."""
    alerting = [kind for kind in MessageKind if kind.is_issuing_alert]
    assert len(alerting) == 2
    with pytest.raises(KeyError):
        MessageKind.issuing_alert("access_method.issued")


def test_a_pin_that_replaces_another_is_written_from_code_changed() -> None:
    """A guest sent a new PIN is told it changed; an Instant Key link and notices have one
    template whatever was sent before."""
    assert MessageKind.PIN_CODE.template(code_changed=True) == "code_changed"
    assert MessageKind.PIN_CODE.template(code_changed=False) == "pin_code"
    assert MessageKind.INSTANT_KEY.template(code_changed=True) == "instant_key"
    assert MessageKind.CARD_READY.template(code_changed=True) == "card_ready"
    assert MessageKind.by_template("code_changed") is MessageKind.PIN_CODE
    assert MessageKind.by_template("_layout.html") is None
