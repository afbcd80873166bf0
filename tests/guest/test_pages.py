"""The guest's "resend my key" link, in process: a key message of a hotel that turned it on
carries it; its page names the hotel and where the key goes, never the key; its button sends
the key as Seam has it now, to the guest only, a few times per stay; anything else is refused
with a plain page. The web app (Starlette's test client), the ledger on SQLite and PostgreSQL,
Seam, Twilio and SendGrid as their stand-ins through the official SDKs."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from starlette.testclient import TestClient

from app.context import Context
from app.delivery.guest_links import sign
from app.guest.words import WORDS
from app.ledger.console import ConsoleStore
from app.ledger.guest_links import GuestLinkStore, stay_key
from app.ledger.store import Ledger
from app.settings import Channel, load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.conftest import TEMPLATES
from tests.events.test_pipeline import (
    CODE_ID,
    GRANT_ID,
    GUEST_ID,
    NEW_PIN,
    PIN,
    deliveries,
    record,
    run,
    send,
    set_method,
)
from tests.queueing import RecordingEnqueuer

LUMIERE = "661025d3-c1d2-403c-83a8-af153aaedfbc"  # the sample stay's workspace
BASE = "https://keys.hotel.example"
PHONE = "+15555550123"
LINK = re.compile(re.escape(BASE) + r"/k/([A-Za-z0-9_-]{28})")


def hotel_templates(tmp_path: Path, entry: str) -> Path:
    """The shipped templates, with properties.toml giving the sample hotel `entry`."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "properties.toml").write_text(
        f'[workspaces."{LUMIERE}"]\nproperty_name = "Hotel Lumière"\n{entry}\n', encoding="utf-8"
    )
    return folder


@dataclass
class Stay:
    services: Context
    client: TestClient
    queue: RecordingEnqueuer
    twilio: TwilioStandin
    sendgrid: SendGridStandin
    seam: SeamStandin

    def link_in(self, body: str) -> str:
        found = LINK.search(body)
        assert found is not None, "no resend link in the message"
        return f"/k/{found.group(1)}"

    def sms_link(self, index: int = -1) -> str:
        return self.link_in(self.twilio.sent[index]["body"])

    def press(self, path: str) -> tuple[int, str]:
        """Open the link's page and press its button, as a browser would."""
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request_id" value="([0-9a-f]{32})"', page.text)
        assert request_id is not None
        answer = self.client.post(path, data={"request_id": request_id.group(1)})
        return answer.status_code, answer.text

    def send_queued(self) -> None:
        while self.queue.sends:
            send(self.services, self.queue.sends.pop(0))


def start(env: dict[str, str], ledger: Ledger) -> tuple[Context, TestClient, RecordingEnqueuer]:
    settings = load_settings(env)
    queue = RecordingEnqueuer()
    return (
        Context.from_settings(settings, ledger),
        TestClient(create_app(settings, ledger=ledger, enqueuer=queue)),
        queue,
    )


@pytest.fixture
def linked_env(settings_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    templates = hotel_templates(tmp_path, "guest_resend_link = true")
    return {**settings_env, "TEMPLATES_DIR": str(templates), "PUBLIC_BASE_URL": BASE,
            "GUEST_LINK_MAX_RESENDS": "2", "TEMPLATES_RELOAD_SECONDS": "0"}  # fmt: skip


@pytest.fixture
def stay(
    linked_env: dict[str, str],
    ledger: Ledger,
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
) -> Iterator[Stay]:
    """The sample guest's PIN, sent by SMS and email by a hotel that turned the link on."""
    set_method(seam, CODE_ID, code=PIN)
    services, client, queue = start(linked_env, ledger)
    with client:
        run(services, record(services, "access_method.issued.code"))
        assert len(twilio.sent) == 1
        yield Stay(services, client, queue, twilio, sendgrid, seam)


def audit(ledger: Ledger) -> list[tuple[str, str, str | None, str]]:
    entries = ConsoleStore(ledger.engine).audit_entries()
    return [(e.actor, e.action, e.target, e.outcome) for e in reversed(entries)]


def test_a_key_message_carries_the_link_where_the_hotel_turned_it_on(stay: Stay) -> None:
    """The SMS and the email of the PIN each carry a link under PUBLIC_BASE_URL, made for their
    own delivery (two different tokens)."""
    [sms] = stay.twilio.sent
    assert PIN in sms["body"]
    sms_link = stay.link_in(sms["body"])
    [email] = stay.sendgrid.sent
    email_link = stay.link_in(str(email))
    assert sms_link != email_link


@pytest.mark.parametrize(
    ("entry", "public"),
    [("", BASE), ("guest_resend_link = false", BASE), ("guest_resend_link = true", None)],
)
def test_no_link_without_the_hotels_switch_or_a_public_address(
    settings_env: dict[str, str],
    ledger: Ledger,
    tmp_path: Path,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    entry: str,
    public: str | None,
) -> None:
    """Off by default, off when the hotel says false, and not written without PUBLIC_BASE_URL:
    the messages are the ones sent before the link existed."""
    env = {**settings_env, "TEMPLATES_DIR": str(hotel_templates(tmp_path, entry))}
    if public:
        env["PUBLIC_BASE_URL"] = public
    services, _, _ = start(env, ledger)
    run(services, record(services, "access_method.issued.code"))
    [sms] = twilio.sent
    assert "/k/" not in sms["body"]
    assert "Lost it?" not in sms["body"]
    assert "/k/" not in str(sendgrid.sent[0])


def test_the_page_names_the_hotel_and_where_the_key_goes_never_the_key(stay: Stay) -> None:
    """A GET shows the hotel, the masked number and one button; no PIN, no phone number, no
    script, no cookie, and headers that keep the token out of referrers and caches."""
    page = stay.client.get(stay.sms_link())
    assert page.status_code == 200
    assert "Your key at Hotel Lumière" in page.text
    assert "+1********23" in page.text
    assert '<button type="submit">Send my key again</button>' in page.text
    for secret in (PIN, PHONE, "<script"):
        assert secret not in page.text
    assert "set-cookie" not in page.headers
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert stay.queue.sends == []  # opening it sent nothing
    assert len(stay.twilio.sent) == 1


def test_the_button_sends_the_key_seam_has_now_to_the_guest_only(stay: Stay) -> None:
    """The PIN changed in Seam since: the button plans one new SMS of the new PIN, to the
    guest's number, on the SMS channel; the page says where (masked), never the PIN; the audit
    log has it as the guest link's."""
    set_method(stay.seam, CODE_ID, code=NEW_PIN)
    status, text = stay.press(stay.sms_link())
    assert status == 200
    assert "Your key is on its way by text message to +1********23." in text
    assert NEW_PIN not in text
    assert PIN not in text
    assert len(stay.queue.sends) == 1
    stay.send_queued()
    resent = stay.twilio.sent[-1]
    assert (resent["to"], len(stay.twilio.sent), len(stay.sendgrid.sent)) == (PHONE, 2, 1)
    assert NEW_PIN in resent["body"]
    original = next(d for d in deliveries(stay.services) if d.channel == "sms")
    assert ("guest link", "resend", f"delivery {original.id}", "queued") in audit(
        stay.services.ledger
    )


def test_a_stay_gets_its_resends_and_no_more(stay: Stay) -> None:
    """GUEST_LINK_MAX_RESENDS (2 here) presses send; the third is refused with 429 and sends
    nothing, from the first link or the one in a resent message alike (the count is the stay's)."""
    for _ in range(2):
        assert stay.press(stay.sms_link(0))[0] == 200
        stay.send_queued()
    assert len(stay.twilio.sent) == 3
    newest = stay.sms_link()
    assert newest != stay.sms_link(0)
    for path in (stay.sms_link(0), newest):
        status, text = stay.press(path)
        assert status == 429
        assert "as many times as this link allows" in text
    assert stay.queue.sends == []
    assert len(stay.twilio.sent) == 3
    counts = GuestLinkStore(stay.services.ledger.engine)
    assert counts.resends_used(stay_key(GRANT_ID, CODE_ID, GUEST_ID)) == 2
    outcomes = [entry[3] for entry in audit(stay.services.ledger) if entry[0] == "guest link"]
    assert outcomes == ["queued", "queued", "limit_reached", "limit_reached"]


def test_a_revoked_or_deleted_key_is_refused_and_not_counted(stay: Stay) -> None:
    """Seam re-programming the key (not issued) or having deleted it: 410, "no longer works",
    nothing sent, no resend used."""
    link = stay.sms_link()
    set_method(stay.seam, CODE_ID, is_issued=False, code=None)
    status, text = stay.press(link)
    assert (status, "This key no longer works" in text) == (410, True)
    stay.seam.delete_access_method(CODE_ID)
    status, text = stay.press(link)
    assert (status, "This key no longer works" in text) == (410, True)
    assert stay.queue.sends == []
    assert len(stay.twilio.sent) == 1
    counts = GuestLinkStore(stay.services.ledger.engine)
    assert counts.resends_used(stay_key(GRANT_ID, CODE_ID, GUEST_ID)) == 0
    outcomes = [entry[3] for entry in audit(stay.services.ledger) if entry[0] == "guest link"]
    assert outcomes == ["not_issued", "access_method_deleted"]


def test_forged_altered_and_expired_links_are_refused_alike(stay: Stay) -> None:
    """An altered token, one signed with another key, one naming another delivery and garbage
    all get the same 404 page, naming no hotel; a genuine token past its expiry gets 410. None
    sends anything or writes the audit log."""
    link = stay.sms_link()
    token = link.removeprefix("/k/")
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    sms = next(d for d in deliveries(stay.services) if d.channel == "sms")
    until = datetime.now(UTC) + timedelta(days=1)
    foreign = sign(b"not the hotel's key, 32 bytes!!!", sms.id, GUEST_ID, "sms", until)
    other = sign(stay.services.policy.guest_link_key(), sms.id + 1, GUEST_ID, "sms", until)
    answers = []
    for bad in (altered, foreign, other, "garbage", "A" * 28):
        for method in ("GET", "POST"):
            answer = stay.client.request(method, f"/k/{bad}")
            answers.append((answer.status_code, answer.text))
    assert {status for status, _ in answers} == {404}
    assert len({text for _, text in answers}) == 1
    assert "Hotel Lumière" not in answers[0][1]
    assert "This link does not work" in answers[0][1]

    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = sign(stay.services.policy.guest_link_key(), sms.id, GUEST_ID, "sms", past)
    for method in ("GET", "POST"):
        answer = stay.client.request(method, f"/k/{expired}")
        assert answer.status_code == 410
        assert "This link has expired" in answer.text
    assert stay.queue.sends == []
    assert [e for e in audit(stay.services.ledger) if e[0] == "guest link"] == []


def test_a_hotel_that_turns_the_link_off_stops_the_links_sent(
    stay: Stay, linked_env: dict[str, str]
) -> None:
    """Links already sent stop working (410) once properties.toml says false."""
    link = stay.sms_link()
    properties = Path(linked_env["TEMPLATES_DIR"]) / "properties.toml"
    properties.write_text(
        properties.read_text().replace("guest_resend_link = true", "guest_resend_link = false")
    )
    answer = stay.client.get(link)
    assert answer.status_code == 410
    assert "This link no longer works" in answer.text


def test_one_address_is_refused_past_its_limit(
    linked_env: dict[str, str], ledger: Ledger, seam: SeamStandin, twilio: TwilioStandin
) -> None:
    """GUEST_LINK_ADDRESS_LIMIT requests from one address (3 here), good links or not, then
    429 for that address, even with a good link."""
    env = {**linked_env, "GUEST_LINK_ADDRESS_LIMIT": "3"}
    services, client, _ = start(env, ledger)
    with client:
        run(services, record(services, "access_method.issued.code"))
        link = LINK.search(twilio.sent[0]["body"])
        assert link is not None
        assert client.get("/k/garbage").status_code == 404
        assert client.get("/k/" + "A" * 28).status_code == 404
        assert client.get(f"/k/{link.group(1)}").status_code == 200
        refused = client.get(f"/k/{link.group(1)}")
        assert refused.status_code == 429
        assert "Too many requests" in refused.text
        assert refused.headers["retry-after"] == "60"


def test_a_french_hotels_page_is_in_french(
    settings_env: dict[str, str],
    ledger: Ledger,
    tmp_path: Path,
    seam: SeamStandin,
    twilio: TwilioStandin,
) -> None:
    """locale = "fr": the SMS says it in French, and the page is in French."""
    templates = hotel_templates(tmp_path, 'guest_resend_link = true\nlocale = "fr"')
    env = {**settings_env, "TEMPLATES_DIR": str(templates), "PUBLIC_BASE_URL": BASE}
    services, client, _ = start(env, ledger)
    with client:
        run(services, record(services, "access_method.issued.code"))
        body = twilio.sent[0]["body"]
        assert "Perdu ? Recevez-le à nouveau" in body
        link = LINK.search(body)
        assert link is not None
        page = client.get(f"/k/{link.group(1)}")
        assert page.status_code == 200
        assert '<html lang="fr">' in page.text
        assert "Votre clé à Hotel Lumière" in page.text
        assert "Renvoyer ma clé" in page.text


@pytest.mark.parametrize("locale", sorted(WORDS))
@pytest.mark.parametrize("channel", get_args(Channel))
def test_the_page_names_every_channel_a_key_goes_on_in_every_language(
    locale: str, channel: str
) -> None:
    """Asking and sent, each channel a key can go on (WhatsApp included) has its own words in
    every language the page is written in: none borrows the SMS wording."""
    words = WORDS[locale]
    for step in ("ask", "sent"):
        text = words[f"{step}_{channel}"]
        assert "{destination}" in text
        if channel != "sms":
            assert text != words[f"{step}_sms"]
