"""The guest's "resend my key" link in a real browser (Playwright with Debian's chromium, a
phone-sized window) against real processes: `keycourier serve` and a Celery worker on
PostgreSQL and Redis, Seam, Twilio and SendGrid as their stand-ins. The guest opens the link
from the SMS the Twilio stand-in received and presses the button; a second SMS arrives with the
code Seam has now. A revoked key is refused, the stay's last resend is refused, and so is an
altered link. DEVELOPERS.md explains how to run the browser tests.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import Engine, text

from app.ledger.store import make_engine
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import REDIS_URL, ROOT, TEMPLATES, empty_ledger, provider_env
from tests.processes import Processes, free_port, post_sample, running_web, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
CODE_METHOD = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
LUMIERE = "661025d3-c1d2-403c-83a8-af153aaedfbc"
PIN = "605213"
NEW_PIN = "918274"
GUEST_PHONE = "+15555550123"
ON_ITS_WAY = text(
    "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'held', 'sending', 'unknown')"
)


@dataclass
class Stack:
    base: str
    seam: SeamStandin
    twilio: TwilioStandin
    processes: Processes
    workdir: Path
    engine: Engine

    def sms_to_guest(self) -> list[str]:
        return [sms["body"] for sms in self.twilio.sent if sms["to"] == GUEST_PHONE]

    def settled(self) -> bool:
        """No delivery is still on its way (each sent message's delivery is recorded)."""
        with self.engine.connect() as connection:
            waiting = connection.execute(ON_ITS_WAY).scalar()
        return waiting == 0

    def guest_link_audit(self) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT outcome FROM audit_log WHERE actor = 'guest link' ORDER BY id")
            )
            return [row[0] for row in rows]

    def set_code(self, **changes: object) -> None:
        method = self.seam.get("access_method", CODE_METHOD)
        assert method is not None
        self.seam.put_access_method({**method, **changes})


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A hotel that turned the link on, as real processes; its guest has had their PIN by SMS
    (and email)."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    workdir = tmp_path_factory.mktemp("guest-link-browser")
    templates = workdir / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "properties.toml").write_text(
        f'[workspaces."{LUMIERE}"]\nproperty_name = "Hotel Lumière"\nguest_resend_link = true\n',
        encoding="utf-8",
    )
    engine = make_engine(postgres_url)
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        seam.load_samples()
        port = free_port()
        env = {
            **provider_env(seam, twilio, sendgrid),
            "DATABASE_URL": postgres_url,
            "REDIS_URL": REDIS_URL,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "TEMPLATES_DIR": str(templates),
            "GUEST_LINK_MAX_RESENDS": "2",
        }
        with running_web(env, workdir, port) as (base, processes):
            processes.start("worker", "worker", "--concurrency", "2")
            stack = Stack(base, seam, twilio, processes, workdir, engine)
            stack.set_code(code=PIN)
            assert post_sample(base, "access_method.issued.code", "msg_g1", code=PIN).is_success
            assert wait_for(lambda: len(stack.sms_to_guest()) == 1 and stack.settled(), 60)
            yield stack
    with engine.begin() as connection:
        empty_ledger(connection)
    engine.dispose()
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/bootstrap (see DEVELOPERS.md)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A phone-sized browser with JavaScript off: the page needs none."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, java_script_enabled=False
    )
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


def link_in(body: str, base: str) -> str:
    found = re.search(re.escape(base) + r"/k/[A-Za-z0-9_-]{28}", body)
    assert found is not None, "the SMS carries no resend link"
    return found.group(0)


def press(phone: Page, link: str, shot: Shot | None = None) -> int:
    """Open the link as the guest does and press the button; the answer's status."""
    opened = phone.goto(link)
    assert opened is not None
    assert opened.status == 200
    expect(phone.get_by_role("heading", name="Your key at Hotel Lumière")).to_be_visible()
    expect(phone.locator("#message")).to_contain_text("+1********23")
    if shot is not None:
        shot(phone, "20-guest-link")
    with phone.expect_navigation() as answer:
        phone.get_by_role("button", name="Send my key again").click()
    response = answer.value
    assert response is not None
    return response.status


def test_the_guest_has_their_key_sent_again_from_their_sms(
    phone: Page, stack: Stack, shot: Shot
) -> None:
    """The link in the SMS opens the hotel's page; the button sends a second SMS with the code
    Seam has now (changed since), to the guest's phone; the page never shows a code."""
    link = link_in(stack.sms_to_guest()[0], stack.base)
    stack.set_code(code=NEW_PIN)
    assert press(phone, link, shot) == 200
    expect(phone.get_by_role("heading", name="On its way")).to_be_visible()
    expect(phone.locator("#message")).to_have_text(
        "Your key is on its way by text message to +1********23."
    )
    shot(phone, "21-guest-link-sent")
    assert wait_for(lambda: len(stack.sms_to_guest()) == 2 and stack.settled(), 60)
    assert NEW_PIN in stack.sms_to_guest()[1]
    for secret in (PIN, NEW_PIN, GUEST_PHONE):
        assert secret not in phone.content()
    assert stack.guest_link_audit() == ["queued"]


def test_a_revoked_key_is_refused_and_costs_no_resend(phone: Page, stack: Stack) -> None:
    """Seam re-programming the key (not issued): "This key no longer works" (410), no SMS."""
    link = link_in(stack.sms_to_guest()[0], stack.base)
    stack.set_code(is_issued=False, code=None)
    try:
        assert press(phone, link) == 410
        expect(phone.get_by_role("heading", name="This key no longer works")).to_be_visible()
    finally:
        stack.set_code(is_issued=True, code=NEW_PIN)
    assert stack.settled()
    assert len(stack.sms_to_guest()) == 2
    assert stack.guest_link_audit() == ["queued", "not_issued"]


def test_the_stays_last_resend_goes_and_the_next_is_refused(
    phone: Page, stack: Stack, shot: Shot
) -> None:
    """GUEST_LINK_MAX_RESENDS is 2: the revoked try did not count, so one more goes (from the
    link in the resent SMS); the one after is refused, and nothing more is planned."""
    link = link_in(stack.sms_to_guest()[-1], stack.base)
    assert press(phone, link) == 200
    assert wait_for(lambda: len(stack.sms_to_guest()) == 3 and stack.settled(), 60)
    assert NEW_PIN in stack.sms_to_guest()[2]

    assert press(phone, link) == 429
    expect(phone.get_by_role("heading", name="Please contact the front desk")).to_be_visible()
    shot(phone, "22-guest-link-limit")
    assert stack.settled()
    assert len(stack.sms_to_guest()) == 3
    assert stack.guest_link_audit() == ["queued", "not_issued", "queued", "limit_reached"]


def test_an_altered_link_is_refused(phone: Page, stack: Stack) -> None:
    """One character changed: the plain "does not work" page (404), no hotel named, no button."""
    link = link_in(stack.sms_to_guest()[0], stack.base)
    altered = link[:-1] + ("A" if link[-1] != "A" else "B")
    opened = phone.goto(altered)
    assert opened is not None
    assert opened.status == 404
    expect(phone.get_by_role("heading", name="This link does not work")).to_be_visible()
    assert "Hotel Lumière" not in phone.content()
    expect(phone.get_by_role("button")).to_have_count(0)


def test_no_log_line_holds_a_code_a_phone_or_a_link(stack: Stack) -> None:
    """After everything above, the web and worker logs name no PIN, phone number or token."""
    logs = "\n".join(path.read_text() for path in sorted(stack.workdir.glob("*.log")))
    assert "resend requested" in logs
    tokens = [link_in(body, stack.base).rsplit("/", 1)[1] for body in stack.sms_to_guest()]
    for secret in (PIN, NEW_PIN, GUEST_PHONE, *tokens):
        assert secret not in logs
