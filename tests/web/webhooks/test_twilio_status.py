"""POST /webhooks/twilio/status: Twilio's signed SMS status callbacks, built and signed by the
Twilio stand-in as Twilio does (RequestValidator's signature over the StatusCallback URL the
SDK sent), on a real ledger (SQLite and PostgreSQL) and a real Redis broker."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from app.delivery.undelivered import after_undelivered
from app.ledger.models import DeliveryStatus
from app.ledger.store import Ledger
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.events.test_pipeline import GUEST_ID
from tests.queueing import sent_ids
from tests.status_fixtures import PUBLIC, Keycourier, make_keycourier, post_twilio, take_tasks


@pytest.fixture
def kc(settings_env: dict[str, str], ledger: Ledger, redis_url: str) -> Keycourier:
    """keycourier sending guest messages by SMS only (so an email fallback is new)."""
    return make_keycourier(settings_env, ledger, redis_url, DELIVERY_CHANNELS="sms")


def sent_sms(kc: Keycourier, twilio: TwilioStandin) -> tuple[int, str]:
    [delivery] = kc.issue()
    assert delivery.status == DeliveryStatus.SENT
    [message] = twilio.sent
    return delivery.id, message["sid"]


def test_each_sms_asks_for_a_status_callback_carrying_its_delivery(
    kc: Keycourier, twilio: TwilioStandin
) -> None:
    """The SDK sends StatusCallback = PUBLIC_BASE_URL/webhooks/twilio/status?ref=kc-<id>."""
    delivery_id, sid = sent_sms(kc, twilio)
    expected = f"{PUBLIC}/webhooks/twilio/status?ref=kc-{delivery_id}"
    assert twilio.status_callback_url(sid) == expected


def test_without_public_base_url_no_callback_is_asked_for(
    settings_env: dict[str, str], ledger: Ledger, redis_url: str, twilio: TwilioStandin
) -> None:
    """No PUBLIC_BASE_URL, no StatusCallback: Twilio would have nowhere to report to."""
    kc = make_keycourier(
        settings_env, ledger, redis_url, DELIVERY_CHANNELS="sms", PUBLIC_BASE_URL=None
    )
    _, sid = sent_sms(kc, twilio)
    assert twilio.status_callback_url(sid) is None


def test_a_signed_delivered_callback_moves_the_delivery_to_delivered(
    kc: Keycourier, twilio: TwilioStandin
) -> None:
    """Valid signature: 200, the report is kept once, the delivery is delivered."""
    delivery_id, sid = sent_sms(kc, twilio)

    response = post_twilio(kc, twilio, sid, "delivered")

    assert response.status_code == 200
    assert response.json() == {"outcome": "advanced"}
    assert kc.delivery(delivery_id).status == DeliveryStatus.DELIVERED
    [event] = kc.provider_events()
    assert (event.delivery_id, event.provider, event.status) == (delivery_id, "twilio", "delivered")
    assert event.provider_event_id == f"{sid}:delivered"


@pytest.mark.parametrize("forgery", ["tampered", "wrong_token", "missing", "other_url"])
def test_unsigned_or_forged_callbacks_are_refused_with_403(
    kc: Keycourier, twilio: TwilioStandin, forgery: str
) -> None:
    """A changed parameter, another token's signature, no signature, or a signature over
    another URL: 403, nothing recorded, the delivery untouched."""
    delivery_id, sid = sent_sms(kc, twilio)
    url, form, headers = twilio.status_callback(sid, "undelivered", 30003)
    internal = url.replace(PUBLIC, "http://testserver")
    if forgery == "tampered":
        form = {**form, "MessageStatus": "delivered"}
    elif forgery == "wrong_token":
        real_token = twilio.auth_token
        twilio.auth_token = "someone-elses-token"
        _, _, headers = twilio.status_callback(sid, "undelivered", 30003)
        twilio.auth_token = real_token
    elif forgery == "missing":
        headers = {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}
    else:  # signed for one delivery, replayed against another's reference
        internal = internal.replace(f"ref=kc-{delivery_id}", f"ref=kc-{delivery_id + 1}")

    response = kc.client.post(internal, data=form, headers=headers)

    assert response.status_code == 403
    assert kc.provider_events() == []
    assert kc.delivery(delivery_id).status == DeliveryStatus.SENT
    assert take_tasks(kc.redis_url) == []


def test_a_repeated_callback_is_recorded_once(kc: Keycourier, twilio: TwilioStandin) -> None:
    """The same status twice for the same message: one row, the second answer says duplicate."""
    _, sid = sent_sms(kc, twilio)
    assert post_twilio(kc, twilio, sid, "delivered").json() == {"outcome": "advanced"}
    assert post_twilio(kc, twilio, sid, "delivered").json() == {"outcome": "duplicate"}
    assert len(kc.provider_events()) == 1


def test_status_only_moves_forward(kc: Keycourier, twilio: TwilioStandin) -> None:
    """queued, then delivered, then a late sent: delivered stays; every report is kept."""
    delivery_id, sid = sent_sms(kc, twilio)
    outcomes = [
        post_twilio(kc, twilio, sid, status).json()["outcome"]
        for status in ("queued", "delivered", "sent")
    ]
    assert outcomes == ["recorded", "advanced", "recorded"]
    assert kc.delivery(delivery_id).status == DeliveryStatus.DELIVERED
    assert [e.status for e in kc.provider_events()] == ["queued", "delivered", "sent"]


def test_undelivered_is_final(kc: Keycourier, twilio: TwilioStandin) -> None:
    """After undelivered, a delivered or failed report out of order changes nothing."""
    delivery_id, sid = sent_sms(kc, twilio)
    assert post_twilio(kc, twilio, sid, "undelivered", 30003).json() == {"outcome": "undelivered"}
    assert post_twilio(kc, twilio, sid, "delivered").json() == {"outcome": "recorded"}
    assert post_twilio(kc, twilio, sid, "failed", 30008).json() == {"outcome": "recorded"}
    delivery = kc.delivery(delivery_id)
    assert delivery.status == DeliveryStatus.UNDELIVERED
    assert delivery.error_code == "30003"
    # One fallback task, for the first report only.
    assert take_tasks(kc.redis_url) == [("keycourier.after_undelivered", [delivery_id])]


def test_undelivered_sms_falls_back_to_email_once(
    kc: Keycourier, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """undelivered -> the email fallback and a front-desk alert, each planned and sent once,
    however often it runs."""
    delivery_id, sid = sent_sms(kc, twilio)
    post_twilio(kc, twilio, sid, "undelivered", 30003)

    assert kc.run_fallbacks() == ["planned"]
    email, alert = sendgrid.sent
    assert email["personalizations"][0]["to"][0]["email"] == "alex.rivera@example.com"
    assert alert["personalizations"][0]["to"][0]["email"] == "frontdesk@hotel.example"
    assert alert["subject"].startswith("Message not delivered")
    text = next(p["value"] for p in alert["content"] if p["type"] == "text/plain")
    assert "30003" in text
    [fallback] = [d for d in kc.deliveries() if d.fallback_for_id == delivery_id]
    assert fallback.channel == "email"
    assert fallback.status == DeliveryStatus.SENT
    [desk] = [d for d in kc.deliveries() if d.kind.startswith("front_desk")]
    assert desk.kind == "front_desk_delivery_problem"

    # Twilio's "failed" for the same message, and the task handed on again: nothing new.
    post_twilio(kc, twilio, sid, "failed", 30008)
    assert after_undelivered(kc.services, delivery_id) is None
    assert kc.run_fallbacks() == []
    assert len(sendgrid.sent) == 2


def test_undelivered_without_another_channel_alerts_the_front_desk_once(
    kc: Keycourier, twilio: TwilioStandin, sendgrid: SendGridStandin, seam: SeamStandin
) -> None:
    """A guest with no email: no fallback to plan, so the front desk is emailed, once."""
    delivery_id, sid = sent_sms(kc, twilio)
    guest = seam.get("user_identity", GUEST_ID)
    assert guest is not None
    seam.put_user_identity({**guest, "email_address": None})

    post_twilio(kc, twilio, sid, "failed", 30008)
    assert kc.run_fallbacks() == ["planned"]
    post_twilio(kc, twilio, sid, "undelivered", 30003)
    assert kc.run_fallbacks() == []

    [alert] = sendgrid.sent
    assert alert["personalizations"][0]["to"][0]["email"] == "frontdesk@hotel.example"
    [desk] = [d for d in kc.deliveries() if d.kind.startswith("front_desk")]
    assert desk.status == DeliveryStatus.SENT
    assert kc.delivery(delivery_id).error_message is not None
    assert "twilio reported it failed" in (kc.delivery(delivery_id).error_message or "")


def test_a_callback_about_an_unknown_message_is_answered_not_stored(
    kc: Keycourier, twilio: TwilioStandin
) -> None:
    """Signed, but no delivery of ours: 200 (Twilio must not retry), logged, not stored."""
    delivery_id, sid = sent_sms(kc, twilio)
    url, form, headers = twilio.status_callback(sid, "delivered")
    url = url.replace(f"ref=kc-{delivery_id}", "ref=kc-999999")
    form = {**form, "MessageSid": "SM" + "0" * 32, "SmsSid": "SM" + "0" * 32}
    headers["X-Twilio-Signature"] = RequestValidator(twilio.auth_token).compute_signature(url, form)
    response = kc.client.post(url.replace(PUBLIC, "http://testserver"), data=form, headers=headers)
    assert response.json() == {"outcome": "unknown_message"}
    assert kc.provider_events() == []
    assert kc.delivery(delivery_id).status == DeliveryStatus.SENT


@pytest.mark.parametrize("setup", ["public_base_url", "forwarded_headers", "neither"])
def test_behind_a_tls_proxy(
    settings_env: dict[str, str],
    ledger: Ledger,
    redis_url: str,
    twilio: TwilioStandin,
    setup: str,
) -> None:
    """Twilio signs https://keys.example.com/...; the proxy passes http://testserver/... on.
    PUBLIC_BASE_URL, or X-Forwarded-Proto/Host, recovers the signed URL; neither is a 403."""
    kc = make_keycourier(settings_env, ledger, redis_url, DELIVERY_CHANNELS="sms")
    _, sid = sent_sms(kc, twilio)
    url, form, headers = twilio.status_callback(sid, "delivered")
    if setup != "public_base_url":
        kc = make_keycourier(
            settings_env, ledger, redis_url, DELIVERY_CHANNELS="sms", PUBLIC_BASE_URL=None
        )
    if setup == "forwarded_headers":
        headers |= {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "keys.example.com"}

    response = kc.client.post(url.replace(PUBLIC, "http://testserver"), data=form, headers=headers)

    assert response.status_code == (403 if setup == "neither" else 200)


def test_without_an_auth_token_every_callback_is_refused(
    settings_env: dict[str, str], ledger: Ledger, redis_url: str, twilio: TwilioStandin
) -> None:
    """SMS running dry has no token to check signatures with: 403, not an open door."""
    kc = make_keycourier(settings_env, ledger, redis_url, DELIVERY_CHANNELS="sms")
    _, sid = sent_sms(kc, twilio)
    url, form, headers = twilio.status_callback(sid, "delivered")
    dry = make_keycourier(
        settings_env, ledger, redis_url, TWILIO_AUTH_TOKEN=None, TWILIO_ACCOUNT_SID=None
    )
    response = dry.client.post(url.replace(PUBLIC, "http://testserver"), data=form, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"outcome": "not_configured"}


def test_metric_labels_hold_nothing_personal(kc: Keycourier, twilio: TwilioStandin) -> None:
    """The callback counter is labelled by provider, status and outcome: no number, no sid."""
    _, sid = sent_sms(kc, twilio)
    post_twilio(kc, twilio, sid, "delivered")
    labels = [
        sample.labels
        for metric in REGISTRY.collect()
        if metric.name == "keycourier_provider_events"
        for sample in metric.samples
    ]
    assert {"provider": "twilio", "status": "delivered", "outcome": "advanced"} in labels
    for label_set in labels:
        for value in label_set.values():
            assert sid not in value
            assert "+1555" not in value
            assert "kc-" not in value


def test_a_signed_callback_about_another_message_moves_nothing(
    kc: Keycourier, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A callback signed with our auth token and carrying our reference, but naming a
    MessageSid that is not the delivery's, is not applied: no undelivered, no fallback, no
    "guest without a key" email."""
    delivery_id, sid = sent_sms(kc, twilio)
    foreign = "SM" + "f" * 32
    url, form, headers = twilio.status_callback(sid, "undelivered", 30003)
    form = {**form, "MessageSid": foreign, "SmsSid": foreign}
    headers["X-Twilio-Signature"] = RequestValidator(twilio.auth_token).compute_signature(url, form)

    response = kc.client.post(url.replace(PUBLIC, "http://testserver"), data=form, headers=headers)

    assert response.status_code == 200
    assert response.json() == {"outcome": "unknown_message"}
    assert kc.delivery(delivery_id).status == DeliveryStatus.SENT
    assert kc.run_fallbacks() == []
    assert sendgrid.sent == []


def test_a_callback_that_beats_the_worker_is_applied_once_its_message_is_recorded(
    kc: Keycourier, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """An "undelivered" report arriving while the worker has not yet recorded Twilio's answer is
    held, then applied when the worker records that same MessageSid: the fallback follows."""
    [delivery] = kc.issue()
    [message] = twilio.sent
    with kc.ledger.engine.begin() as connection:  # the moment before the worker's record
        connection.execute(
            text(
                "UPDATE attempts SET outcome = 'in_flight', provider_message_id = NULL"
                " WHERE delivery_id = :id"
            ),
            {"id": delivery.id},
        )
    response = post_twilio(kc, twilio, message["sid"], "undelivered", 30003)
    assert response.json() == {"outcome": "held"}

    assert kc.ledger.apply_held_reports(delivery.id, message["sid"]) is True
    assert kc.delivery(delivery.id).status == DeliveryStatus.UNDELIVERED
    kc.send_all(sent_ids(after_undelivered(kc.services, delivery.id) or []))
    recipients = [m["personalizations"][0]["to"][0]["email"] for m in sendgrid.sent]
    assert recipients == ["alex.rivera@example.com", "frontdesk@hotel.example"]
