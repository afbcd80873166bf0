"""The ledger's sending steps (claim, attempts) on both backends: PostgreSQL claims in one
statement, SQLite in several; both must tell the worker the same things."""

from __future__ import annotations

from datetime import timedelta

from app.ledger.models import AttemptOutcome, DeliveryStatus, utcnow
from app.ledger.store import AttemptEnd, InFlight, Ledger, NewDelivery

LEASE = timedelta(seconds=60)


def planned(ledger: Ledger, fingerprint: str, channel: str = "sms") -> int:
    delivery_id, created = ledger.plan_delivery(
        NewDelivery(
            access_method_id="am-1",
            kind="pin_code",
            channel=channel,
            credential_fingerprint=fingerprint,
            event_id=None,
            access_grant_id="ag-1",
            user_identity_id="ui-1",
            guest_name="Alex Rivera",
            reservation=None,
            destination_masked="+1********23",
        )
    )
    assert created
    return delivery_id


def begun(ledger: Ledger, delivery_id: int, fingerprint: str | None = None) -> InFlight:
    claimed = ledger.claim_delivery(delivery_id, LEASE)
    assert claimed is not None
    attempt = ledger.begin_attempt(claimed, "twilio", fingerprint, LEASE)
    assert attempt is not None
    return attempt


def sent(ledger: Ledger, delivery_id: int) -> None:
    attempt = begun(ledger, delivery_id)
    ledger.finish_attempt(attempt, AttemptEnd(AttemptOutcome.SENT, DeliveryStatus.SENT, "SM1"))


def test_a_first_claim_has_no_attempts_and_no_earlier_code(ledger: Ledger) -> None:
    """A fresh delivery is claimed once, with no attempts and no earlier code for the guest."""
    delivery_id = planned(ledger, "fp-1")

    claimed = ledger.claim_delivery(delivery_id, LEASE)

    assert claimed is not None
    assert claimed.delivery.status == DeliveryStatus.SENDING
    assert (claimed.delivery.attempts, claimed.unresolved) == ([], None)
    assert claimed.other_credential_sent is False
    assert ledger.claim_delivery(delivery_id, LEASE) is None


def test_a_claim_knows_the_guest_already_holds_another_code(ledger: Ledger) -> None:
    """Once the guest was sent one code on a channel, the claim of a new code's delivery on
    that channel says so (the message then says the code changed)."""
    sent(ledger, planned(ledger, "fp-old"))
    sent(ledger, planned(ledger, "fp-email", channel="email"))
    delivery_id = planned(ledger, "fp-new")

    claimed = ledger.claim_delivery(delivery_id, LEASE)

    assert claimed is not None
    assert claimed.other_credential_sent is True
    email_claim = ledger.claim_delivery(planned(ledger, "fp-new", channel="email"), LEASE)
    assert email_claim is not None
    assert email_claim.other_credential_sent is True  # fp-email was sent on email


def test_a_retried_claim_carries_its_earlier_attempts(ledger: Ledger) -> None:
    """A delivery claimed again after a failed try brings its attempts, for the backoff."""
    delivery_id = planned(ledger, "fp-1")
    attempt = begun(ledger, delivery_id)
    ledger.finish_attempt(
        attempt,
        AttemptEnd(
            AttemptOutcome.TRANSIENT_ERROR,
            DeliveryStatus.PENDING,
            error_code="20429",
            next_attempt_at=utcnow() - timedelta(seconds=1),
        ),
    )

    claimed = ledger.claim_delivery(delivery_id, LEASE)

    assert claimed is not None
    assert [a.outcome for a in claimed.delivery.attempts] == [AttemptOutcome.TRANSIENT_ERROR]


def test_a_delivery_not_yet_due_is_not_claimed(ledger: Ledger) -> None:
    """A delivery waiting for its retry time is left alone until then."""
    delivery_id = planned(ledger, "fp-1")
    attempt = begun(ledger, delivery_id)
    later = utcnow() + timedelta(minutes=5)
    ledger.finish_attempt(
        attempt,
        AttemptEnd(AttemptOutcome.TRANSIENT_ERROR, DeliveryStatus.PENDING, next_attempt_at=later),
    )

    assert ledger.claim_delivery(delivery_id, LEASE) is None


def test_an_unknown_delivery_is_claimed_with_the_attempt_to_resolve(ledger: Ledger) -> None:
    """A delivery whose provider call got no answer is claimed with that attempt, to look up."""
    delivery_id = planned(ledger, "fp-1")
    attempt = begun(ledger, delivery_id, "msg-fp")
    ledger.finish_attempt(attempt, AttemptEnd(AttemptOutcome.UNKNOWN, DeliveryStatus.UNKNOWN))

    claimed = ledger.claim_delivery(delivery_id, LEASE)

    assert claimed is not None
    assert claimed.unresolved is not None
    assert (claimed.unresolved.id, claimed.unresolved.message_fingerprint) == (
        attempt.id,
        "msg-fp",
    )


def test_beginning_an_attempt_renews_the_lease(ledger: Ledger) -> None:
    """begin_attempt renews the claim from now, in the statement that checks it is current."""
    delivery_id = planned(ledger, "fp-1")
    claimed = ledger.claim_delivery(delivery_id, timedelta(seconds=5))
    assert claimed is not None
    held = claimed.delivery.lease_expires_at
    assert held is not None

    assert ledger.begin_attempt(claimed, "twilio", None, timedelta(minutes=10)) is not None
    renewed = ledger.get_delivery(delivery_id)

    assert renewed is not None
    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at > held + timedelta(minutes=9)
