"""A credential's messages planned together (DeliveryStore.plan_credential), on SQLite and
PostgreSQL: each is created once, a second planning finds them, and only what was not planned
yet is created and claimed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from app.ledger.deliveries import NewDelivery
from app.ledger.models import utcnow
from app.ledger.store import Ledger
from app.messages.kinds import MessageKind

FINGERPRINT = "fp-4821"


def message(channel: str, recipient: str = "ui-1") -> NewDelivery:
    return NewDelivery(
        access_method_id="am-1",
        kind=MessageKind.PIN_CODE,
        channel=channel,
        credential_fingerprint=FINGERPRINT,
        event_id=None,
        access_grant_id="ag-1",
        user_identity_id=recipient,
        guest_name="Alex Rivera",
        reservation=None,
        destination_masked="+1********23",
        recipient=recipient,
    )


def test_each_message_is_created_and_claimed_once(ledger: Ledger) -> None:
    news = [message("sms"), message("email"), message("sms", "ui-2")]
    first = ledger.plan_credential(
        "am-1", news, MessageKind.PIN_CODE, FINGERPRINT, claim_for=timedelta(minutes=1)
    )
    assert first.created == 3
    if ledger.engine.dialect.name == "postgresql":
        # Claimed in the planning transaction.
        claimed = {(c.delivery.channel, c.delivery.recipient) for c in first.claimed}
        assert claimed == {("sms", "ui-1"), ("email", "ui-1"), ("sms", "ui-2")}
        assert len({c.delivery.id for c in first.claimed}) == 3
        assert first.pending == []
    else:
        # Claimed one at a time when sent.
        assert first.claimed == []
        assert len(set(first.pending)) == 3

    again = ledger.plan_credential(
        "am-1", news, MessageKind.PIN_CODE, FINGERPRINT, claim_for=timedelta(minutes=1)
    )
    assert (again.created, again.claimed, again.pending) == (0, [], first.pending)


def test_only_the_messages_not_planned_yet_are_created(ledger: Ledger) -> None:
    sms = ledger.plan_credential("am-1", [message("sms")], MessageKind.PIN_CODE, FINGERPRINT)
    assert sms.created == 1
    [sms_id] = sms.pending

    both = ledger.plan_credential(
        "am-1",
        [message("sms"), message("email")],
        MessageKind.PIN_CODE,
        FINGERPRINT,
        claim_for=timedelta(minutes=1),
    )
    assert both.created == 1
    if ledger.engine.dialect.name == "postgresql":
        [email] = both.claimed
        assert (email.delivery.channel, email.delivery.id != sms_id) == ("email", True)
        # The SMS planned before stays pending (not claimed by this planning).
        assert both.pending == [sms_id]
    else:
        assert len(both.pending) == 2
        assert sms_id in both.pending


def test_a_message_planned_for_later_is_listed_pending_beside_the_claimed_one(
    ledger: Ledger,
) -> None:
    """Planned together, a message due now is claimed and one scheduled for later is not: the
    later one is listed pending (handed on for its time), the claimed one is not."""
    later = replace(message("email"), not_before=utcnow() + timedelta(hours=3))
    planned = ledger.plan_credential(
        "am-1", [message("sms"), later], MessageKind.PIN_CODE, FINGERPRINT,
        claim_for=timedelta(minutes=1),
    )  # fmt: skip

    assert planned.created == 2
    if ledger.engine.dialect.name == "postgresql":
        [sms] = planned.claimed
        assert sms.delivery.channel == "sms"
        [email_id] = planned.pending
        assert email_id != sms.delivery.id
        email = ledger.get_delivery(email_id)
        assert email is not None
        assert email.channel == "email"
    else:
        assert (planned.claimed, len(planned.pending)) == ([], 2)


def test_many_messages_are_planned_across_inserts_with_their_times(ledger: Ledger) -> None:
    """Twenty messages (ten guests, two channels) take more than one INSERT; three of them were
    planned before. Each is planned once, and what is claimed carries the times it was stored
    with, as aware UTC instants."""
    news = [message(channel, f"ui-{n}") for n in range(10) for channel in ("sms", "email")]
    before = ledger.plan_credential("am-1", news[5:8], MessageKind.PIN_CODE, FINGERPRINT)
    assert before.created == 3
    started = utcnow()

    planned = ledger.plan_credential(
        "am-1", news, MessageKind.PIN_CODE, FINGERPRINT, claim_for=timedelta(minutes=1)
    )

    assert planned.created == 17
    if ledger.engine.dialect.name == "postgresql":
        mine = {(c.delivery.channel, c.delivery.recipient) for c in planned.claimed}
        assert mine == {(new.channel, new.recipient) for new in news[:5] + news[8:]}
        assert sorted(planned.pending) == sorted(before.pending)
        for claimed in planned.claimed:
            delivery = claimed.delivery
            assert delivery.created_at <= delivery.updated_at  # claimed after it was planned
            assert delivery.created_at >= started - timedelta(seconds=1)
            assert delivery.lease_expires_at is not None
            assert delivery.lease_expires_at.utcoffset() == timedelta(0)
            assert delivery.destination_masked == "+1********23"
    else:
        assert len(set(planned.pending)) == 20
        assert set(before.pending) <= set(planned.pending)
    again = ledger.plan_credential("am-1", news, MessageKind.PIN_CODE, FINGERPRINT)
    assert again.created == 0
