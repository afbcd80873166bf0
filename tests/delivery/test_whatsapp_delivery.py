"""A guest's key by WhatsApp, in process on SQLite and PostgreSQL: planned on the hotel's first
phone channel, composed as its content template, and handed to SMS when WhatsApp refuses it;
the ledger keeps channel `whatsapp` and a PIN nowhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import text

from app.context import Context
from app.events.processing import process_event
from app.ledger.store import Ledger, NewEvent
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES
from tests.queueing import send_and_hand_on, sent_ids

HOTEL = "661025d3-c1d2-403c-83a8-af153aaedfbc"
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
GUEST_PHONE = "+15555550123"
PIN_TEMPLATE = "HX" + "c3" * 16
KEY_TEMPLATE = "HX" + "d4" * 16
PIN = "903172"


def properties() -> str:
    return f"""
[whatsapp.pin_code]
content_sid = "{PIN_TEMPLATE}"
variables = {{ 1 = "pin_code", 2 = "property_name" }}

[whatsapp.instant_key]
content_sid = "{KEY_TEMPLATE}"
variables = {{ 1 = "instant_key_url" }}

[workspaces."{HOTEL}"]
property_name = "Hotel Lumière"
channels = ["whatsapp", "sms", "email"]
whatsapp_from = "+14155238886"
"""


def deliver(
    settings_env: dict[str, str], ledger: Ledger, seam: SeamStandin, tmp_path: Path, toml: str
) -> Context:
    """Process the sample PIN event with these properties, and send all it hands on."""
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    folder = Path(shutil.copytree(TEMPLATES, tmp_path / "templates"))
    (folder / "properties.toml").write_text(toml)
    env = {**settings_env, "TEMPLATES_DIR": str(folder)}
    ctx = Context.from_settings(load_settings(env), ledger)
    event = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
    recorded = ledger.record_event(
        NewEvent(
            svix_id=None,
            seam_event_id=event["event_id"],
            event_type=event["event_type"],
            access_method_id=event["access_method_id"],
            access_grant_ids=tuple(event["access_grant_ids"]),
        )
    )
    queue = sent_ids(process_event(ctx, recorded.event_id).next)
    while queue:
        queue += sent_ids(send_and_hand_on(ctx, queue.pop(0), []).next)
    return ctx


def rows(ledger: Ledger) -> dict[str, tuple[str, str | None]]:
    """channel -> (status, error_code) of the guest's pin_code deliveries."""
    with ledger.engine.connect() as connection:
        found = connection.execute(
            text("SELECT channel, status, error_code FROM deliveries WHERE kind = 'pin_code'")
        )
        return {row[0]: (row[1], row[2]) for row in found}


def test_whatsapp_and_email_go_and_sms_stands_by(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    tmp_path: Path,
) -> None:
    """With WhatsApp first, the guest gets the WhatsApp (the code only in its variables) and the
    email; no SMS is planned while the WhatsApp goes; no ledger column holds the code."""
    twilio.add_content(PIN_TEMPLATE, "Code {{1}} at {{2}}")
    deliver(settings_env, ledger, seam, tmp_path, properties())

    assert rows(ledger) == {"whatsapp": ("sent", None), "email": ("sent", None)}
    [message] = twilio.whatsapp_sent
    assert message["content_variables"] == {"1": PIN, "2": "Hotel Lumière"}
    assert twilio.sent[0]["body"] == f"Code {PIN} at Hotel Lumière"
    assert len(sendgrid.sent) == 1
    with ledger.engine.connect() as connection:
        for table in ("deliveries", "attempts"):
            dump = str(connection.execute(text(f"SELECT * FROM {table}")).all())  # noqa: S608
            assert PIN not in dump
            assert GUEST_PHONE not in dump


def test_a_refused_whatsapp_falls_back_to_sms(
    settings_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    tmp_path: Path,
) -> None:
    """Twilio refusing the template (21655: not this account's) fails the WhatsApp for good,
    with Twilio's code, and the same code goes by SMS at once, once."""
    deliver(settings_env, ledger, seam, tmp_path, properties())  # template not at Twilio

    found = rows(ledger)
    assert found["whatsapp"] == ("failed", "21655")
    assert found["sms"] == ("sent", None)
    [sms] = twilio.sent
    assert sms["to"] == GUEST_PHONE
    assert PIN in sms["body"]
