"""The planner: what the guest is owed, from Seam's current state alone."""

from __future__ import annotations

from datetime import UTC, datetime

from app.events.planner import plan_guest_messages
from app.ports import AccessGrant, AccessMethod, Guest, Recipient


def method(**changes: object) -> AccessMethod:
    fields: dict[str, object] = {
        "access_method_id": "am-1",
        "workspace_id": "ws",
        "mode": "code",
        "display_name": "PIN Code",
        "is_issued": True,
        "is_encoding_required": False,
        "is_ready_for_encoding": False,
        "code": "4321",
    }
    fields.update(changes)
    return AccessMethod(**fields)  # type: ignore[arg-type]


def recipient(phone: str | None = "+15555550123", email: str | None = "g@example.com") -> Recipient:
    grant = AccessGrant(
        access_grant_id="ag-1",
        user_identity_id="ui-1",
        display_name="Guest, Room 1",
        starts_at=datetime(2025, 6, 20, 15, tzinfo=UTC),
        ends_at=datetime(2025, 6, 23, 11, tzinfo=UTC),
        space_ids=("sp-1",),
    )
    return Recipient(grant, Guest("ui-1", "Sam Guest", phone, email))


def test_issued_code_plans_one_message_per_reachable_channel() -> None:
    """A guest with a phone and an email gets a PIN message on each."""
    plan = plan_guest_messages(method(), [recipient()], ("sms", "email"))

    assert [(m.kind, m.channel, m.destination) for m in plan.messages] == [
        ("pin_code", "sms", "+15555550123"),
        ("pin_code", "email", "g@example.com"),
    ]


def test_unreachable_guest_is_noted_not_silently_dropped() -> None:
    """A guest with neither phone nor email gets no message and a note saying why."""
    plan = plan_guest_messages(method(), [recipient(None, None)], ("sms", "email"))

    assert plan.messages == ()
    assert plan.notes == ("user identity ui-1 has no phone number or email address",)


def test_not_issued_plans_nothing() -> None:
    """An access method that is not issued yet has nothing to send."""
    plan = plan_guest_messages(method(is_issued=False), [recipient()], ("sms", "email"))

    assert plan.messages == ()


def test_card_has_no_guest_message() -> None:
    """Plastic cards go through the front desk, never to the guest's phone."""
    plan = plan_guest_messages(method(mode="card", code=None), [recipient()], ("sms", "email"))

    assert plan.messages == ()


def test_mobile_key_uses_instant_key_message() -> None:
    """A mobile key plans the Instant Key message."""
    plan = plan_guest_messages(
        method(mode="mobile_key", code=None, instant_key_url="https://ik.seam.co/X"),
        [recipient()],
        ("sms",),
    )

    assert [m.kind for m in plan.messages] == ["instant_key"]


def test_access_method_repr_hides_credential() -> None:
    """Printing an access method cannot leak its PIN."""
    assert "4321" not in repr(method())
