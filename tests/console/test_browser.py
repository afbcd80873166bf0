"""The ops console driven in a real browser (Playwright with Debian's chromium) against real
processes: `keycourier serve` (uvicorn) and a Celery worker on PostgreSQL and Redis, with Seam,
Twilio and SendGrid as their local stand-ins. The guest's deliveries come from signed webhooks
through the whole pipeline, not from rows written by the test.

With `--screenshots`, each page is also saved as a PNG to docs/screenshots/ (scripts/screenshots).
DEVELOPERS.md explains how to run these tests.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.console.passwords import hash_password
from app.ledger.store import make_engine
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import REDIS_URL, ROOT, TEMPLATES, empty_ledger, provider_env
from tests.console.support import API_TOKEN, NAME, PASSWORD, SESSION_SECRET, console_env
from tests.processes import Processes, free_port, post_sample, running_web, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
PIN = "605213"
CODE_METHOD = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
MOBILE_KEY_METHOD = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
CARD_METHOD = "27d8ad77-55c2-4e20-b5b3-43555926f0e8"
FRONT_DESK_ENCODER = "681da2d6-4ac6-4b33-8c03-86281b761325"
GUEST_PHONE = "+15555550123"
UNREACHABLE_PHONE = "+15005550009"  # the Twilio stand-in answers 21614: not a mobile number
# A second hotel of the group, in a Seam workspace of its own, with a guest of its own; and a
# desk user of the first hotel (ACCESS_FILE), who must never see that guest.
LUMIERE_WORKSPACE = "661025d3-c1d2-403c-83a8-af153aaedfbc"
HARBOUR_WORKSPACE = "0b7a9c1e-2f3d-4e5a-9b8c-7d6e5f4a3b2c"
HARBOUR_SPACE = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
HARBOUR_METHOD = "c0ffee00-1111-4222-8333-444455556666"
HARBOUR_GRANT = "c0ffee00-2222-4333-8444-555566667777"
HARBOUR_IDENTITY = "c0ffee00-3333-4444-8555-666677778888"
HARBOUR_PIN = "482913"
HARBOUR_PHONE = "+15555550199"
HOTEL_DESK = "lumiere-desk"
HOTEL_DESK_PASSWORD = "the Lumiere desk's own password"
PROPERTIES = f"""
[workspaces."{LUMIERE_WORKSPACE}"]
property_name = "Hotel Lumière"

[workspaces."{HARBOUR_WORKSPACE}"]
property_name = "Harbour Inn"
"""
ACCESS = f"""
[users.{HOTEL_DESK}]
role = "desk"
workspaces = ["{LUMIERE_WORKSPACE}"]
"""


@dataclass
class Stack:
    base: str
    seam: SeamStandin
    twilio: TwilioStandin
    sendgrid: SendGridStandin
    processes: Processes
    workdir: Path

    def api(self, path: str) -> httpx.Response:
        return httpx.get(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10
        )


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The service as real processes, with a guest who got a PIN (the SMS delivered, the
    email bounced), a failed Instant Key SMS, a key card waiting at the front desk and a
    late-issuing alert."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        seam.load_samples()
        method = seam.get("access_method", CODE_METHOD)
        assert method is not None
        seam.put_access_method({**method, "code": PIN})
        port = free_port()
        workdir = tmp_path_factory.mktemp("console-browser")
        _second_hotel(seam)
        env = {
            **provider_env(seam, twilio, sendgrid),
            "DATABASE_URL": postgres_url,
            "REDIS_URL": REDIS_URL,
            # Twilio's and SendGrid's status reports reach the web process, as in production.
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.webhook_public_key,
            **console_env(),
            **_hotel_group(workdir),
        }
        with running_web(env, workdir, port) as (base, processes):
            processes.start("worker", "worker", "--concurrency", "4")
            stack = Stack(base, seam, twilio, sendgrid, processes, workdir)
            _guest_history(stack)
            yield stack
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        empty_ledger(connection)
    engine.dispose()
    client.flushdb()
    client.close()


def _hotel_group(workdir: Path) -> dict[str, str]:
    """Two hotels in properties.toml, and the Lumière desk user in OPS_USERS and ACCESS_FILE
    (the console's other users are not in it: admins of everything, as before roles)."""
    templates = workdir / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "properties.toml").write_text(PROPERTIES, encoding="utf-8")
    (workdir / "access.toml").write_text(ACCESS, encoding="utf-8")
    users = console_env()["OPS_USERS"]
    return {
        "TEMPLATES_DIR": str(templates),
        "ACCESS_FILE": str(workdir / "access.toml"),
        "OPS_USERS": f"{users},{HOTEL_DESK}:{hash_password(HOTEL_DESK_PASSWORD)}",
    }


def _second_hotel(seam: SeamStandin) -> None:
    """Harbour Inn's guest, Morgan Blake, with a PIN of their own in Seam."""
    resources: dict[str, Any] = {"workspace_id": HARBOUR_WORKSPACE,
                                 "created_at": "2025-06-16T16:54:19.946Z"}  # fmt: skip
    seam.put_space({**resources, "space_id": HARBOUR_SPACE, "name": "Room 12",
                    "display_name": "Room 12"})  # fmt: skip
    seam.put_user_identity({**resources, "user_identity_id": HARBOUR_IDENTITY,
                            "full_name": "Morgan Blake", "display_name": "Morgan Blake",
                            "phone_number": HARBOUR_PHONE, "email_address": None})  # fmt: skip
    seam.put_access_method({**resources, "access_method_id": HARBOUR_METHOD, "mode": "code",
                            "display_name": "PIN Code", "is_issued": True,
                            "code": HARBOUR_PIN})  # fmt: skip
    grant = seam.get("access_grant", "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b")
    assert grant is not None
    seam.put_access_grant({**grant, **resources, "access_grant_id": HARBOUR_GRANT,
                           "access_grant_key": "HARBOUR-7731", "display_name": "Morgan Blake",
                           "user_identity_id": HARBOUR_IDENTITY, "space_ids": [HARBOUR_SPACE],
                           "access_method_ids": [HARBOUR_METHOD]})  # fmt: skip


def _guest_history(stack: Stack) -> None:
    assert post_sample(stack.base, "access_method.issued.code", "msg_b1", code=PIN).is_success
    assert wait_for(lambda: len(stack.twilio.sent) == 1 and len(stack.sendgrid.sent) == 1, 60)
    # Twilio reports the SMS delivered; SendGrid defers the email, then it bounces.
    [sms] = stack.twilio.sent
    assert stack.twilio.report_status(sms["sid"], "sent") == 200
    assert stack.twilio.report_status(sms["sid"], "delivered") == 200
    events = [stack.sendgrid.event(0, "deferred"), stack.sendgrid.event(0, "bounce")]
    assert stack.sendgrid.post_events(f"{stack.base}/webhooks/sendgrid/events", events) == 200
    # The Instant Key's SMS goes to a number Twilio refuses: a failed delivery for alerts.
    identity = stack.seam.all("user_identity")[0]
    stack.seam.put_user_identity({**identity, "phone_number": UNREACHABLE_PHONE})
    post_sample(stack.base, "access_method.issued.mobile_key", "msg_b2")
    post_sample(stack.base, "access_method.card_encoding_required", "msg_b3")
    post_sample(
        stack.base, "access_method.delay_in_issuing", "msg_b4", access_method_id=CARD_METHOD
    )

    def settled() -> bool:
        alerts = stack.api("/api/alerts").json()
        statuses = {(d["kind"], d["status"]) for d in alerts["deliveries"]}
        return (
            bool(alerts["flags"])
            and {
                ("instant_key", "failed"),
                ("pin_code", "undelivered"),
                ("front_desk_card", "sent"),
                ("front_desk_issue_delayed", "sent"),
            }
            <= statuses
        )

    assert wait_for(settled, 60), stack.api("/api/alerts").text
    stack.seam.put_user_identity(identity)

    # Harbour Inn's guest gets their PIN by SMS through the same pipeline.
    sent_before = len(stack.twilio.sent)
    assert post_sample(stack.base, "access_method.issued.code", "msg_h1", code=HARBOUR_PIN,
                       access_method_id=HARBOUR_METHOD, access_grant_ids=[HARBOUR_GRANT],
                       access_grant_keys=["HARBOUR-7731"],
                       event_id="c0ffee00-4444-4555-8666-777788889999",
                       workspace_id=HARBOUR_WORKSPACE).is_success  # fmt: skip
    assert wait_for(lambda: len(stack.twilio.sent) == sent_before + 1, 60)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/bootstrap (see DEVELOPERS.md)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(base_url=stack.base, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


Shot = Callable[[Page, str], None]


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shot:
    """shot(page, name): with --screenshots, save the page to docs/screenshots/NAME.png."""
    wanted = request.config.getoption("--screenshots")

    def take(page: Page, name: str) -> None:
        if wanted:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()


def sign_in(page: Page, password: str = PASSWORD, name: str = NAME) -> None:
    page.goto("/ops/")
    expect(page).to_have_url(f"{page.url.split('/ops/')[0]}/ops/sign-in?next=/ops/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_refuses_a_wrong_password_and_lets_the_operator_in(page: Page, shot: Shot) -> None:
    """A wrong password gets one plain message; the right one opens the deliveries; signing
    out ends the session."""
    page.goto("/ops/sign-in")
    shot(page, "01-sign-in")
    sign_in(page, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("That name and password do not match.")
    shot(page, "02-sign-in-failed")

    sign_in(page)
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    expect(page.get_by_role("cell", name="Alex Rivera").first).to_be_visible()
    shot(page, "03-deliveries")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/ops/audit")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_find_the_guest_open_a_delivery_and_resend(page: Page, stack: Stack, shot: Shot) -> None:
    """Searching by phone number finds the guest's SMS (shown masked); its timeline shows the
    attempt and never the PIN; resend sends the current code again through Twilio."""
    sign_in(page)
    page.get_by_label("Guest, reservation, phone or email").fill("+1 555 555 0123")
    page.get_by_label("Channel").select_option("sms")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("+1********23")
    expect(rows.first).to_contain_text("pin code")
    shot(page, "04-deliveries-search")

    rows.first.get_by_role("link", name="Alex Rivera").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    timeline = page.locator("table.timeline tbody tr")
    expect(timeline).to_have_count(4)
    expect(timeline.nth(1)).to_contain_text("attempt 1")
    expect(timeline.nth(1)).to_contain_text("sent")
    expect(timeline.nth(3)).to_contain_text("status report")
    expect(timeline.nth(3)).to_contain_text("delivered")
    expect(page.locator(".facts")).to_contain_text("delivered")
    assert PIN not in page.content()
    assert GUEST_PHONE not in page.content()
    shot(page, "05-delivery-timeline")

    sent_before = len(stack.twilio.sent)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Resend to guest").click()
    expect(page.locator("#action-result")).to_contain_text("Resend")
    assert wait_for(lambda: len(stack.twilio.sent) == sent_before + 1, 30)
    resent = stack.twilio.sent[-1]
    assert resent["to"] == GUEST_PHONE
    assert PIN in resent["body"]
    assert PIN not in page.content()
    # The email of the same PIN, and the resend, are listed as the key's other messages.
    others = page.locator("table").last
    expect(others).to_contain_text("a***@example.com")
    expect(others.locator("tbody tr")).to_have_count(2)
    shot(page, "06-delivery-resent")

    page.get_by_role("link", name="Open the new delivery").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("pin code by sms")
    # Twilio has the SMS, so the attempt was recorded (before the call): it is on the page.
    expect(page.locator("table.timeline")).to_contain_text("attempt 1")
    assert PIN not in page.content()


def test_encode_a_card_on_an_encoder(page: Page, stack: Stack, shot: Shot) -> None:
    """The card queue lists the waiting card; an offline encoder's encoder_not_online is shown
    with what to do, and the card stays queued; on an online encoder the card is encoded and
    leaves the queue."""
    sign_in(page)
    nav(page, "Card queue")
    expect(page.locator("tbody tr")).to_have_count(1)
    shot(page, "07-card-queue")

    page.get_by_role("link", name="Encode on encoder…").click()
    expect(page.get_by_label("Front Desk Encoder")).to_be_visible()
    shot(page, "08-card-encoders")

    stack.seam.set_encoder_online(FRONT_DESK_ENCODER, False)
    page.get_by_label("Front Desk Encoder").check()
    page.get_by_role("button", name="Encode card").click()
    result = page.locator("#action-result")
    expect(result).to_contain_text("encoder not online")
    expect(result).to_contain_text("The encoder is offline")
    shot(page, "09-card-encoder-offline")
    assert len(stack.api("/api/flags").json()["flags"]) == 1

    stack.seam.set_encoder_online(FRONT_DESK_ENCODER, True)
    page.get_by_label("Front Desk Encoder").check()
    page.get_by_role("button", name="Encode card").click()
    expect(result).to_contain_text("success")
    expect(result).to_contain_text("The card is encoded")
    shot(page, "10-card-encoded")
    assert stack.api("/api/flags").json()["flags"] == []
    nav(page, "Card queue")
    expect(page.get_by_text("No card is waiting to be encoded.")).to_be_visible()


def test_preview_a_template(page: Page, shot: Shot) -> None:
    """The preview renders a message from the templates on disk, SMS and email."""
    sign_in(page)
    nav(page, "Template preview")
    page.get_by_label("Message").select_option("pin_code")
    page.get_by_label("Language").fill("fr")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-sms")).to_contain_text("1234")  # the sample stay's PIN
    expect(page.locator("#preview-subject")).not_to_be_empty()
    frame = page.frame_locator("iframe.email")
    expect(frame.locator("body")).to_contain_text("1234")
    shot(page, "11-template-preview")


def test_alerts_and_the_audit_log(page: Page, shot: Shot) -> None:
    """Alerts list the failed SMS and the front-desk alerts; the audit log shows who signed
    in (and failed to), searched (the number masked), opened a delivery, resent, encoded and
    previewed (the tests above ran first)."""
    sign_in(page)
    nav(page, "Alerts")
    table = page.locator("table").first
    expect(table).to_contain_text("instant key")
    expect(table).to_contain_text("21614")
    expect(table).to_contain_text("undelivered")
    expect(table).to_contain_text("front desk issue delayed")
    shot(page, "12-alerts")

    nav(page, "Audit log")
    log = page.locator("table")
    for action in ("sign in", "sign out", "search", "view", "resend", "encode", "preview"):
        expect(log).to_contain_text(action)
    expect(log).to_contain_text("failed")
    expect(log).to_contain_text("encoder not online")
    expect(log).to_contain_text("'+1********23' (hash ")
    assert PASSWORD not in page.content()
    assert GUEST_PHONE not in page.content()
    shot(page, "13-audit-log")


def test_a_hotels_desk_finds_its_guests_and_never_another_hotels(
    page: Page, stack: Stack, shot: Shot
) -> None:
    """The Lumière desk user sees Hotel Lumière's guest with the hotel named, finds them by
    phone, and finds nothing of Harbour Inn's guest by name, phone or the delivery's id (a
    plain "Not found"); no template preview or audit log for a desk. An admin of the group
    sees both hotels and filters by one."""
    harbour = stack.api(f"/api/deliveries?q={HARBOUR_PHONE.replace('+', '%2B')}").json()
    [harbour_sms] = harbour["deliveries"]
    assert harbour_sms["hotel"] == "Harbour Inn"

    sign_in(page, password=HOTEL_DESK_PASSWORD, name=HOTEL_DESK)
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("Hotel Lumière")
    expect(page.locator("table")).not_to_contain_text("Morgan Blake")
    expect(page.locator("table")).not_to_contain_text("Harbour Inn")
    nav_links = page.get_by_role("navigation", name="Console")
    expect(nav_links).not_to_contain_text("Template preview")
    expect(nav_links).not_to_contain_text("Audit log")
    expect(page.get_by_label("Hotel").locator("option")).to_have_text(["any", "Hotel Lumière"])
    shot(page, "14-desk-one-hotel")

    search = page.get_by_label("Guest, reservation, phone or email")
    search.fill("+1 555 555 0123")
    page.get_by_role("button", name="Search").click()
    expect(rows.first).to_contain_text("Alex Rivera")
    for query in ("Morgan Blake", "+1 555 555 0199"):
        search.fill(query)
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_text("No delivery matches.")).to_be_visible()
    # By id: Lumière's deliveries whose ids hold those digits may show, never Harbour's.
    search.fill(str(harbour_sms["id"]))
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Deliveries")).to_be_visible()
    assert "Morgan Blake" not in page.content()
    page.goto(f"/ops/deliveries/{harbour_sms['id']}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert "Morgan" not in page.content()
    assert "Harbour" not in page.content()
    page.get_by_role("button", name="Sign out").click()

    sign_in(page)
    expect(page.locator("table")).to_contain_text("Harbour Inn")
    page.get_by_label("Hotel").select_option("Harbour Inn")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Morgan Blake")
    expect(rows.first).to_contain_text("+1********99")
    shot(page, "15-deliveries-by-hotel")


def test_no_log_line_holds_a_password_a_pin_or_the_guests_details(stack: Stack) -> None:
    """After everything above (sign-ins, a search by phone number, resend, encode), the web
    and worker logs hold no password, session secret, API token, PIN, phone or email."""
    logs = "\n".join(path.read_text() for path in sorted(stack.workdir.glob("*.log")))
    assert "resend requested" in logs  # the processes did log the console's actions
    for secret in (
        PASSWORD,
        SESSION_SECRET,
        API_TOKEN,
        PIN,
        HARBOUR_PIN,
        HOTEL_DESK_PASSWORD,
        GUEST_PHONE,
        HARBOUR_PHONE,
        "555 555 0123",
        "555+555+0123",
        "alex.rivera@example.com",
    ):
        assert secret not in logs
