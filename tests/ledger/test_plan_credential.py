"""A credential's messages planned together (DeliveryStore.plan_credential), on SQLite and
PostgreSQL: each is created once, a second planning finds them, and only what was not planned
yet is created and claimed."""

from __future__ import annotations

from datetime import timedelta

from app.ledger.deliveries import NewDelivery
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
