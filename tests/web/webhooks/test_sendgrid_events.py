"""POST /webhooks/sendgrid/events: SendGrid's signed Event Webhook, batches built and signed by
the SendGrid stand-in with a freshly generated ECDSA P-256 key as SendGrid signs them, on a real
ledger (SQLite and PostgreSQL) and a real Redis broker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.ledger.models import DeliveryStatus
from app.ledger.store import Ledger
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.signing import (
    SENDGRID_SIGNATURE,
    SENDGRID_TIMESTAMP,
    new_event_webhook_key,
    sendgrid_signed_headers,
)
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import GUEST_ID
from tests.status_fixtures import Keycourier, make_keycourier, sendgrid_env, take_tasks

EVENTS = "/webhooks/sendgrid/events"


@pytest.fixture
def kc(
    settings_env: dict[str, str], ledger: Ledger, redis_url: str, sendgrid: SendGridStandin
) -> Keycourier:
    """keycourier sending guest messages by email only (so an SMS fallback is new)."""
    return make_keycourier(
        {**settings_env, **sendgrid_env(sendgrid)}, ledger, redis_url, DELIVERY_CHANNELS="email"
    )


def sent_email(kc: Keycourier, sendgrid: SendGridStandin) -> int:
    [delivery] = kc.issue()
    assert delivery.status == DeliveryStatus.SENT
    assert len(sendgrid.sent) == 1
    return delivery.id


def post(kc: Keycourier, sendgrid: SendGridStandin, events: list[dict[str, Any]]) -> Any:
    body, headers = sendgrid.signed_events(events)
    return kc.client.post(EVENTS, content=body, headers=headers)


def test_mail_carries_only_an_opaque_delivery_reference(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """custom_args hold one thing: kc-<delivery id>. No name, address, reservation or code."""
    delivery_id = sent_email(kc, sendgrid)
    [mail] = sendgrid.sent
    assert mail["custom_args"] == {"keycourier_ref": f"kc-{delivery_id}"}


def test_a_signed_delivered_event_moves_the_delivery_to_delivered(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """Valid signature: 200, the event kept under its sg_event_id, the delivery delivered."""
    delivery_id = sent_email(kc, sendgrid)
    event = sendgrid.event(0, "delivered")

    response = post(kc, sendgrid, [event])

    assert response.status_code == 200
    assert response.json()["events"] == {"advanced": 1}
    assert kc.delivery(delivery_id).status == DeliveryStatus.DELIVERED
    [stored] = kc.provider_events()
    assert (stored.provider, stored.provider_event_id) == ("sendgrid", event["sg_event_id"])
    assert (stored.delivery_id, stored.status) == (delivery_id, "delivered")
    assert stored.occurred_at is not None


def test_deferred_is_recorded_and_untracked_events_are_dropped(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """deferred goes in the timeline without moving the delivery; processed and open are
    answered and not stored."""
    delivery_id = sent_email(kc, sendgrid)
    batch = [sendgrid.event(0, kind) for kind in ("processed", "deferred", "open")]

    assert post(kc, sendgrid, batch).json()["events"] == {"recorded": 1}
    assert [e.status for e in kc.provider_events()] == ["deferred"]
    assert kc.delivery(delivery_id).status == DeliveryStatus.SENT


@pytest.mark.parametrize("forgery", ["tampered", "other_key", "missing", "bad_base64"])
def test_unsigned_or_forged_batches_are_refused_with_403(
    kc: Keycourier, sendgrid: SendGridStandin, forgery: str
) -> None:
    """A changed body, another key's signature, no signature, garbage: 403, nothing kept."""
    delivery_id = sent_email(kc, sendgrid)
    body, headers = sendgrid.signed_events([sendgrid.event(0, "bounce")])
    if forgery == "tampered":
        body = body.replace(b'"bounce"', b'"delivered"', 1)
    elif forgery == "other_key":
        headers = sendgrid_signed_headers(new_event_webhook_key(), body)
    elif forgery == "missing":
        headers = {k: v for k, v in headers.items() if k != SENDGRID_SIGNATURE}
    else:
        headers[SENDGRID_SIGNATURE] = "not base64 at all!"

    response = kc.client.post(EVENTS, content=body, headers=headers)

    assert response.status_code == 403
    assert kc.provider_events() == []
    assert kc.delivery(delivery_id).status == DeliveryStatus.SENT
    assert take_tasks(kc.redis_url) == []


def test_a_stale_batch_is_refused_as_a_replay(kc: Keycourier, sendgrid: SendGridStandin) -> None:
    """Correctly signed an hour ago (tolerance 600 s): 403 stale. Signed now: accepted."""
    sent_email(kc, sendgrid)
    events = [sendgrid.event(0, "delivered")]
    body, headers = sendgrid.signed_events(events, timestamp=int(time.time()) - 3600)

    response = kc.client.post(EVENTS, content=body, headers=headers)
    assert (response.status_code, response.json()) == (403, {"outcome": "stale"})
    assert kc.provider_events() == []

    # The timestamp is signed: moving it forward breaks the signature.
    headers[SENDGRID_TIMESTAMP] = str(int(time.time()))
    assert kc.client.post(EVENTS, content=body, headers=headers).status_code == 403
    assert post(kc, sendgrid, events).status_code == 200


def test_duplicates_are_recorded_once(kc: Keycourier, sendgrid: SendGridStandin) -> None:
    """The same sg_event_id twice in a batch and again in a retried batch: one row."""
    sent_email(kc, sendgrid)
    event = sendgrid.event(0, "delivered")

    assert post(kc, sendgrid, [event, event]).json()["events"] == {"advanced": 1, "duplicate": 1}
    assert post(kc, sendgrid, [event]).json()["events"] == {"duplicate": 1}
    assert len(kc.provider_events()) == 1


def test_out_of_order_events_move_status_forward_only(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """bounce (final), then a late delivered and deferred: still undelivered, one fallback."""
    delivery_id = sent_email(kc, sendgrid)
    batch = [sendgrid.event(0, kind) for kind in ("bounce", "delivered", "deferred")]

    assert post(kc, sendgrid, batch).json()["events"] == {"undelivered": 1, "recorded": 2}
    delivery = kc.delivery(delivery_id)
    assert delivery.status == DeliveryStatus.UNDELIVERED
    assert delivery.error_code == "5.1.1"
    assert "alex.rivera" not in (delivery.error_message or "")  # the reason text is not kept
    assert take_tasks(kc.redis_url) == [("keycourier.after_undelivered", [delivery_id])]


def test_a_bounce_after_delivered_is_an_asynchronous_bounce(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """The receiving server took it, then bounced it: delivered -> undelivered."""
    delivery_id = sent_email(kc, sendgrid)
    post(kc, sendgrid, [sendgrid.event(0, "delivered")])
    post(kc, sendgrid, [sendgrid.event(0, "bounce")])
    assert kc.delivery(delivery_id).status == DeliveryStatus.UNDELIVERED


def test_a_bounced_email_falls_back_to_sms_once(
    kc: Keycourier, sendgrid: SendGridStandin, twilio: TwilioStandin
) -> None:
    """bounce -> the SMS fallback and a front-desk alert, sent once each; a dropped event for
    the same mail adds nothing."""
    delivery_id = sent_email(kc, sendgrid)
    post(kc, sendgrid, [sendgrid.event(0, "bounce")])
    assert kc.run_fallbacks() == ["planned"]
    post(kc, sendgrid, [sendgrid.event(0, "dropped")])
    assert kc.run_fallbacks() == []

    [sms] = twilio.sent
    assert sms["to"] == "+15555550123"
    [fallback] = [d for d in kc.deliveries() if d.fallback_for_id == delivery_id]
    assert fallback.channel == "sms"
    [desk] = [d for d in kc.deliveries() if d.kind.startswith("front_desk")]
    assert desk.kind == "front_desk_delivery_problem"
    _, alert = sendgrid.sent
    assert alert["personalizations"][0]["to"][0]["email"] == "frontdesk@hotel.example"


def test_dropped_without_a_phone_alerts_the_front_desk_once(
    kc: Keycourier, sendgrid: SendGridStandin, twilio: TwilioStandin, seam: SeamStandin
) -> None:
    """A guest with no phone: the front desk gets one "guest without a key" email."""
    sent_email(kc, sendgrid)
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "phone_number": None})

    post(kc, sendgrid, [sendgrid.event(0, "dropped")])
    post(kc, sendgrid, [sendgrid.event(0, "dropped")])  # a new sg_event_id, same news
    assert kc.run_fallbacks() == ["planned"]

    assert twilio.sent == []
    alerts = sendgrid.sent[1:]
    assert [a["personalizations"][0]["to"][0]["email"] for a in alerts] == [
        "frontdesk@hotel.example"
    ]


def test_events_for_mail_we_did_not_send_are_answered_not_stored(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """No keycourier_ref and an unknown message id: 200, nothing stored."""
    sent_email(kc, sendgrid)
    event = sendgrid.event(0, "delivered", keycourier_ref=None, sg_message_id="other.filter")
    assert post(kc, sendgrid, [event]).json()["events"] == {"unknown_message": 1}
    assert kc.provider_events() == []


def test_a_signed_body_that_is_not_a_list_is_a_400(
    kc: Keycourier, sendgrid: SendGridStandin
) -> None:
    """Signed by SendGrid but unreadable: a clear 400, nothing stored."""
    body = b'{"event": "delivered"}'
    response = kc.client.post(EVENTS, content=body, headers=sendgrid.sign(body))
    assert (response.status_code, response.json()) == (400, {"outcome": "malformed"})


def test_without_a_public_key_every_batch_is_refused(
    settings_env: dict[str, str], ledger: Ledger, redis_url: str, sendgrid: SendGridStandin
) -> None:
    """No SENDGRID_WEBHOOK_PUBLIC_KEY: 403 not_configured, never accepted unverified."""
    kc = make_keycourier(settings_env, ledger, redis_url)
    body, headers = sendgrid.signed_events([])
    response = kc.client.post(EVENTS, content=body, headers=headers)
    assert (response.status_code, response.json()) == (403, {"outcome": "not_configured"})
