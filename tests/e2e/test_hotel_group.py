"""A hotel group in one deployment, through real processes: two Seam workspaces in
SEAM_WORKSPACES_FILE, each with its own key, webhook secret and URL, and hotel B's own front
desk and senders in properties.toml. uvicorn, a Celery worker, Redis and PostgreSQL are real;
Seam, Twilio and SendGrid are the stand-ins, reached through the official SDKs.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.signing import signed_headers
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES, provider_env
from tests.processes import Processes, running_web, wait_for

pytestmark = pytest.mark.e2e

HOTEL_A = "2f8e6c1a-0b4d-4e7f-9a3c-5d6e7f809a1b"
HOTEL_B = "661025d3-c1d2-403c-83a8-af153aaedfbc"  # the samples' workspace
KEY_A = "seam_testkey_hotel_a"
KEY_B = "seam_testkey_hotel_b"
SECRET_A = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
SECRET_B = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
ROOM_204 = "5e1a2b3c-4d5e-4f60-8172-839405162738"  # a space of hotel B
PIN = "418207"
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
B_SERVICE = "MG" + "b" * 32
B_DESK = "desk@hotel-b.example"
ANNEX_DESK = "annex-desk@hotel-b.example"

WORKSPACES = f"""
[workspaces."{HOTEL_A}"]
name = "Hotel A"
api_key_env = "SEAM_API_KEY_HOTEL_A"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_HOTEL_A"

[workspaces."{HOTEL_B}"]
name = "Hotel B"
api_key_env = "SEAM_API_KEY_HOTEL_B"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_HOTEL_B"
"""

PROPERTIES = f"""
[workspaces."{HOTEL_B}"]
property_name = "Hotel B"
front_desk_email = "{B_DESK}"
twilio_messaging_service_sid = "{B_SERVICE}"
sendgrid_from_email = "keys@hotel-b.example"
sendgrid_from_name = "Hotel B"

[spaces."{ROOM_204}"]
front_desk_email = "{ANNEX_DESK}"
"""


@pytest.fixture
def group(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes]]:
    """Web and worker of a deployment serving hotels A and B, neither on SEAM_API_KEY."""
    seam.add_workspace(HOTEL_A, KEY_A)
    seam.add_workspace(HOTEL_B, KEY_B)
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "properties.toml").write_text(PROPERTIES)
    (tmp_path / "workspaces.toml").write_text(WORKSPACES)
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
        "TEMPLATES_DIR": str(templates),
        "SEAM_WORKSPACES_FILE": str(tmp_path / "workspaces.toml"),
        "SEAM_API_KEY_HOTEL_A": KEY_A,
        "SEAM_API_KEY_HOTEL_B": KEY_B,
        "SEAM_WEBHOOK_SECRET_HOTEL_A": SECRET_A,
        "SEAM_WEBHOOK_SECRET_HOTEL_B": SECRET_B,
        "CREDENTIAL_HASH_KEY": "hotel-group-fingerprint-key-0123456789",
    }
    # Only the workspaces file's keys and secrets, and no group-wide desk: hotel B's own desk
    # must be found when the card's email is planned, or it would be recorded as skipped.
    env["SEAM_API_KEY"] = env["SEAM_WEBHOOK_SECRET"] = env["FRONT_DESK_EMAIL"] = ""
    with running_web(env, tmp_path) as (base, processes):
        processes.start("worker", "worker", "--concurrency", "4")
        yield base, processes


def post(
    base: str, path: str, secret: str, sample: str, msg_id: str, **changes: Any
) -> httpx.Response:
    """POST a sample event (with an event id of its own), changed as asked, signed with
    `secret` as Svix would."""
    event = json.loads((SAMPLES / "events" / f"{sample}.json").read_text())
    event.update({"event_id": f"event-{msg_id}", **changes})
    body = json.dumps(event).encode()
    headers = signed_headers(secret, body, msg_id=msg_id)
    return httpx.post(f"{base}{path}", content=body, headers=headers, timeout=10)


def recorded_svix_ids(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT svix_id FROM events")))
    finally:
        engine.dispose()


def test_each_workspace_webhook_takes_only_its_own_signed_events(
    group: tuple[str, Processes], clean_postgres_url: str
) -> None:
    """Each workspace's URL accepts events signed with its secret; another workspace's secret,
    an event naming another workspace, an unlisted workspace and the single-workspace URL
    (no SEAM_WEBHOOK_SECRET) are refused, and none of those is recorded."""
    base, _ = group
    a_path, b_path = f"/webhooks/seam/{HOTEL_A}", f"/webhooks/seam/{HOTEL_B}"

    a_ok = post(base, a_path, SECRET_A, "device.connected", "msg_a_ok", workspace_id=HOTEL_A)
    b_ok = post(base, b_path, SECRET_B, "device.connected", "msg_b_ok", workspace_id=HOTEL_B)
    wrong_secret = post(base, b_path, SECRET_A, "device.connected", "msg_wrong_secret",
                        workspace_id=HOTEL_B)  # fmt: skip
    wrong_workspace = post(base, b_path, SECRET_B, "device.connected", "msg_wrong_workspace",
                           workspace_id=HOTEL_A)  # fmt: skip
    unknown = post(base, "/webhooks/seam/not-a-hotel", SECRET_B, "device.connected", "msg_unknown")
    single = post(base, "/webhooks/seam", SECRET_B, "device.connected", "msg_single")

    assert (a_ok.status_code, b_ok.status_code) == (200, 200)
    assert wrong_secret.status_code == 400
    assert wrong_secret.json()["outcome"] == "invalid_signature"
    assert wrong_workspace.status_code == 400
    assert wrong_workspace.json()["outcome"] == "wrong_workspace"
    assert unknown.status_code == 404
    assert single.status_code == 404
    assert recorded_svix_ids(clean_postgres_url) == {"msg_a_ok", "msg_b_ok"}


def test_hotel_b_is_read_with_its_key_and_messaged_from_its_senders(
    group: tuple[str, Processes], seam: SeamStandin, twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> None:  # fmt: skip
    """An event of hotel B is read from Seam with B's key only, its guest's SMS goes from B's
    messaging service and their email from B's address and name, and no log holds a secret."""
    base, processes = group

    response = post(base, f"/webhooks/seam/{HOTEL_B}", SECRET_B, "access_method.issued.code",
                    "msg_b_code", code=PIN)  # fmt: skip
    assert response.status_code == 200
    assert wait_for(lambda: len(twilio.sent) == 1 and len(sendgrid.sent) == 1, 60)

    [sms] = twilio.sent
    assert PIN in sms["body"]
    assert sms["messaging_service_sid"] == B_SERVICE
    assert sms["from"] is None
    [email] = sendgrid.sent
    assert email["from"] == {"email": "keys@hotel-b.example", "name": "Hotel B"}
    assert seam.requests_with_key(KEY_B, "/access_methods/get_related")
    assert not seam.requests_with_key(KEY_A)

    logs = processes.stop()
    assert "delivery sent" in logs
    for secret in (PIN, KEY_A, KEY_B, SECRET_A, SECRET_B, twilio.auth_token, sendgrid.api_key):
        assert secret not in logs


def test_a_card_in_a_room_of_hotel_b_is_flagged_to_that_rooms_desk(
    group: tuple[str, Processes], sendgrid: SendGridStandin
) -> None:
    """The front-desk email for a card to encode in hotel B's room goes to the desk
    properties.toml names for that room (not the hotel's other desk), with no FRONT_DESK_EMAIL
    set at all, and from hotel B's sender."""
    base, _ = group

    response = post(base, f"/webhooks/seam/{HOTEL_B}", SECRET_B,
                    "access_method.card_encoding_required", "msg_b_card")  # fmt: skip
    assert response.status_code == 200
    assert wait_for(lambda: len(sendgrid.sent) == 1, 60)

    [email] = sendgrid.sent
    recipients = [to["email"] for p in email["personalizations"] for to in p["to"]]
    assert recipients == [ANNEX_DESK]
    assert email["from"]["email"] == "keys@hotel-b.example"
