"""Hot reload: a good edit is used on the next message without a restart; an edit that fails
the check is refused, logged and shown on /readyz, while the last good version keeps serving."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.errors import TemplateError
from app.ledger.store import Ledger
from app.messages.live import LiveTemplates
from app.messages.properties import Audience
from app.messages.variables import sample_context
from app.settings import load_settings
from app.web.main import create_app
from tests.conftest import WEBHOOK_SECRET

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
CONTEXT = sample_context("pin_code", Audience("en", "UTC"))
GOOD_EDIT = "Door open with {{ pin_code }}, {{ guest_first_name }}.\n"
BAD_EDIT = "Door open with {{ pin_code }, {{ guest_first_name }}.\n"


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A private copy of the shipped templates, free to edit."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "templates"))


def edit(templates: Path, source: str, name: str = "pin_code/en/sms.txt") -> None:
    (templates / name).write_text(source, encoding="utf-8")


def test_a_good_edit_is_used_on_the_next_message(templates: Path) -> None:
    """After an edit that passes the check, the same LiveTemplates renders the new words."""
    live = LiveTemplates(templates, reload_seconds=0)
    assert live.render_sms("pin_code", CONTEXT).startswith("Hi Alex")
    edit(templates, GOOD_EDIT)
    assert live.render_sms("pin_code", CONTEXT) == "Door open with 1234, Alex."
    assert live.status() == {"status": "ok"}


def test_an_edit_to_the_layout_alone_is_used(templates: Path) -> None:
    """A change to _layout.html shows in the next HTML email."""
    live = LiveTemplates(templates, reload_seconds=0)
    layout = (templates / "_layout.html").read_text(encoding="utf-8")
    edit(templates, layout.replace("<body>", "<body><p>NEW LAYOUT</p>"), "_layout.html")
    assert "NEW LAYOUT" in live.render_email("pin_code", CONTEXT).html


def test_a_bad_edit_is_refused_logged_and_reported(
    templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A syntax error keeps the last good SMS in use, logs file:line and reports degraded."""
    live = LiveTemplates(templates, reload_seconds=0)
    with caplog.at_level(logging.WARNING, logger="app.messages.live"):
        edit(templates, BAD_EDIT)
        assert live.render_sms("pin_code", CONTEXT).startswith("Hi Alex")
    status = live.status()
    assert status["status"] == "degraded"
    assert status["serving"] == "last good version"
    problems = status["problems"]
    assert isinstance(problems, list)
    assert problems[0].startswith("pin_code/en/sms.txt:1: syntax error")
    assert any("pin_code/en/sms.txt:1: syntax error" in r.getMessage() for r in caplog.records)


def test_an_edit_that_drops_the_pin_is_refused(templates: Path) -> None:
    """An SMS that renders but no longer shows the PIN is never sent: the old one is."""
    live = LiveTemplates(templates, reload_seconds=0)
    edit(templates, "Hi {{ guest_first_name }}, your code is ready.\n")
    assert "1234" in live.render_sms("pin_code", CONTEXT)
    assert live.status()["status"] == "degraded"


def test_fixing_a_bad_edit_brings_it_back(templates: Path) -> None:
    """After a refused edit, a fixed one is taken up and the status is ok again."""
    live = LiveTemplates(templates, reload_seconds=0)
    edit(templates, BAD_EDIT)
    live.refresh()
    edit(templates, GOOD_EDIT)
    assert live.render_sms("pin_code", CONTEXT) == "Door open with 1234, Alex."
    assert live.status() == {"status": "ok"}


def test_starting_on_bad_templates_serves_nothing(templates: Path) -> None:
    """With no good version ever loaded, a render raises TemplateError (the delivery waits)."""
    edit(templates, BAD_EDIT)
    live = LiveTemplates(templates, reload_seconds=0)
    with pytest.raises(TemplateError, match="no version of the templates has passed"):
        live.render_sms("pin_code", CONTEXT)
    assert live.status()["serving"] == "nothing"


def test_the_folder_is_looked_at_only_every_reload_interval(templates: Path) -> None:
    """Between looks an edit is not seen; once the interval has passed, it is."""
    now = [100.0]
    live = LiveTemplates(templates, reload_seconds=5, clock=lambda: now[0])
    edit(templates, GOOD_EDIT)
    now[0] += 4
    assert live.render_sms("pin_code", CONTEXT).startswith("Hi Alex")
    now[0] += 1
    assert live.render_sms("pin_code", CONTEXT) == "Door open with 1234, Alex."


def test_the_same_text_is_checked_once_per_process(templates: Path) -> None:
    """A second LiveTemplates over the same folder takes the first one's renderer; so does a
    folder edited back to text already checked. A new text is a new renderer."""
    first = LiveTemplates(templates, reload_seconds=0)
    assert LiveTemplates(templates, reload_seconds=0).current() is first.current()
    before = first.current()
    original = (templates / "pin_code/en/sms.txt").read_text(encoding="utf-8")
    edit(templates, GOOD_EDIT)
    assert first.current() is not before
    edit(templates, original)
    assert first.current() is before


def test_a_version_checked_with_other_settings_is_checked_again(templates: Path) -> None:
    """The check's settings are part of what was checked: an SMS of three parts passes with
    SMS_MAX_SEGMENTS=3, and the same folder is still refused with 2."""
    edit(templates, "Your door code is {{ pin_code }}. " + "Welcome to the hotel. " * 16 + "\n")
    assert LiveTemplates(templates, reload_seconds=0, max_segments=3).status() == {"status": "ok"}
    refused = LiveTemplates(templates, reload_seconds=0, max_segments=2).status()
    assert refused["status"] == "degraded"
    assert refused["serving"] == "nothing"


def test_readyz_reports_degraded_templates_as_200(
    templates: Path, ledger: Ledger, redis_url: str
) -> None:
    """With a refused edit, /readyz answers 200, status degraded, naming the file and line."""
    settings = load_settings(
        {
            "SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "REDIS_URL": redis_url,
            "TEMPLATES_DIR": str(templates),
            "TEMPLATES_RELOAD_SECONDS": "0",
        }
    )
    with TestClient(create_app(settings, ledger=ledger)) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        edit(templates, BAD_EDIT)
        ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["database"] == body["broker"] == "ok"
    assert body["templates"]["problems"][0].startswith("pin_code/en/sms.txt:1:")
