"""Input that used to get a bare 500: signed JSON nested past the parser's depth on the Seam and
SendGrid webhooks, a Twilio `ref` or a console/API id past what an Integer key holds, a huge
page number, a NUL in a query parameter or a form. Each gets a 4xx (or, for Seam, the 200 its
signed-but-unreadable bodies get), on SQLite and PostgreSQL, and the next request is served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from app.ledger.models import Event, EventStatus
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SAMPLES
from app.standins.sendgrid import SendGridStandin
from app.standins.signing import signed_headers
from app.web.main import create_app
from tests.conftest import WEBHOOK_SECRET
from tests.console.support import API_TOKEN, sign_in, web_env

TWILIO_TOKEN = "twilio-auth-token-for-these-tests"
# Past PostgreSQL's integer, past SQLite's 64-bit integer, and a digit int() will not read.
HUGE_IDS = ["3000000000", "99999999999999999999"]
NESTED = b"[" * 100_000 + b"]" * 100_000  # 200 kB: under the Seam endpoint's 256 KiB


@pytest.fixture
def client(ledger: Ledger, redis_url: str, sendgrid: SendGridStandin) -> Iterator[TestClient]:
    env = {
        **web_env(ledger.engine.url.render_as_string(False), redis_url),
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.webhook_public_key,
    }
    app = create_app(load_settings(env), ledger=ledger)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def seam_event(msg_id: str) -> tuple[bytes, dict[str, str]]:
    event = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
    body = json.dumps(event).encode()
    return body, signed_headers(WEBHOOK_SECRET, body, msg_id=msg_id)


def api(client: TestClient, path: str) -> int:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    return client.get(path, headers=headers, follow_redirects=False).status_code


def test_signed_deeply_nested_json_to_seam_is_recorded_unreadable_with_200(
    client: TestClient, ledger: Ledger
) -> None:
    """Seam signed it, so it gets what every signed-but-unreadable body gets: recorded as
    rejected, 200; the next event is taken in as usual."""
    headers = signed_headers(WEBHOOK_SECRET, NESTED, msg_id="msg_nested")
    answer = client.post("/webhooks/seam", content=NESTED, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "rejected"
    body, headers = seam_event("msg_after")
    assert client.post("/webhooks/seam", content=body, headers=headers).status_code == 200
    with OrmSession(ledger.engine) as session:
        events = list(session.scalars(select(Event).order_by(Event.id)))
    assert [(e.svix_id, e.status) for e in events] == [
        ("msg_nested", EventStatus.REJECTED),
        ("msg_after", EventStatus.QUEUED),
    ]


def test_signed_deeply_nested_json_to_sendgrid_is_a_400(
    client: TestClient, sendgrid: SendGridStandin
) -> None:
    """A signed SendGrid batch nested past the parser's depth is "not a JSON array": 400."""
    answer = client.post("/webhooks/sendgrid/events", content=NESTED, headers=sendgrid.sign(NESTED))
    assert (answer.status_code, answer.json()) == (400, {"outcome": "malformed"})
    body, headers = sendgrid.signed_events([])
    assert client.post("/webhooks/sendgrid/events", content=body, headers=headers).is_success


@pytest.mark.parametrize("ref", ["kc-3000000000", "kc-99999999999999999", "kc-²", "kc-0"])
def test_a_twilio_ref_that_names_no_possible_delivery_is_answered(
    client: TestClient, ref: str
) -> None:
    """A signed status callback whose `ref` is past an Integer id (or not ASCII digits) is a
    report about a message the ledger does not know: 200, not a 500."""
    url = f"http://testserver/webhooks/twilio/status?{urlencode({'ref': ref})}"
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    answer = client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "unknown_message"


@pytest.mark.parametrize("huge", HUGE_IDS)
def test_an_id_past_an_integer_key_is_not_found(client: TestClient, huge: str) -> None:
    """Every console and API path that takes an id answers 404 for one no row can have, and
    the console still answers afterwards."""
    token = sign_in(client)
    for path in (f"/ops/deliveries/{huge}", f"/ops/cards/{huge}"):
        assert client.get(path, follow_redirects=False).status_code == 404, path
    for path in (f"/ops/deliveries/{huge}/resend", f"/ops/cards/{huge}/encode",
                 f"/ops/cards/{huge}/check"):  # fmt: skip
        form = {"csrf_token": token, "acs_encoder_id": "e", "action_attempt_id": "a"}
        answer = client.post(path, data=form, follow_redirects=False)
        assert answer.status_code == 404, path
    assert api(client, f"/api/deliveries/{huge}") == 404
    assert client.get(f"/ops/audit?result={huge}").status_code == 200
    assert client.get("/ops/").status_code == 200


def test_a_huge_page_number_is_a_400(client: TestClient) -> None:
    """A page past any the ledger could hold is refused, on the pages and the API alike."""
    sign_in(client)
    huge = "9" * 30
    for path in (f"/ops/?page={huge}", f"/ops/audit?page={huge}", "/ops/?page=1000001"):
        assert client.get(path).status_code == 400, path
    assert api(client, f"/api/deliveries?page={huge}") == 400
    assert client.get("/ops/?page=2").status_code == 200


def test_a_nul_in_a_query_parameter_or_a_form_is_a_400(client: TestClient) -> None:
    """A NUL (no ledger column takes one) in a search, a filter or a posted form: 400; other
    unusual characters are searched for as they are."""
    token = sign_in(client)
    for path in ("/ops/?q=a%00b", "/ops/?status=%00", "/ops/audit?page=1%00"):
        assert client.get(path).status_code == 400, path
    assert api(client, "/api/deliveries?q=%00") == 400
    answer = client.post(
        "/ops/templates/preview",
        data={"csrf_token": token, "message": "pin_code\x00", "locale": "en"},
    )
    assert answer.status_code == 400
    for text in ("²", "٣", "1e5", "%_\\"):
        assert client.get("/ops/", params={"q": text}).status_code == 200, text
    assert api(client, "/api/deliveries?q=%C2%B2") == 200
