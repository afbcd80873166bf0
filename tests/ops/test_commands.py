"""The operator's commands: register-webhook, doctor and worker-health, against the stand-ins
through the official SDKs, a real ledger and a real Redis."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from app.events.kinds import SUBSCRIBED_EVENT_TYPES
from app.ops.cli import main
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import TEMPLATES, WEBHOOK_SECRET, provider_env
from tests.console.support import SESSION_SECRET, ops_users
from tests.processes import free_port
from tests.signing import webhook_public_key


@pytest.fixture
def env(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    database_url: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """A production-like configuration pointed at the stand-ins; set in the environment."""
    seam.workspace["is_sandbox"] = False
    hook = {
        "webhook_id": "wh-1",
        "url": "https://keys.example.com/webhooks/seam",
        "event_types": list(SUBSCRIBED_EVENT_TYPES),
        "secret": WEBHOOK_SECRET,
    }
    seam.put("webhook", hook)
    values = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CREDENTIAL_HASH_KEY": "a-long-random-string-for-tests",
        "PUBLIC_BASE_URL": "https://keys.example.com",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": webhook_public_key(),
        "OPS_USERS": ops_users(),
        "OPS_SESSION_SECRET": SESSION_SECRET,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_register_webhook_creates_it_with_our_event_types(
    env: dict[str, str], seam: SeamStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    """The webhook is created for keycourier's endpoint and event types; its secret is printed."""
    assert main(["register-webhook", "--url", "https://hotel.example.com"]) == 0

    [created] = [hook for hook in seam.all("webhook") if hook["webhook_id"] != "wh-1"]
    assert created["url"] == "https://hotel.example.com/webhooks/seam"
    assert created["event_types"] == list(SUBSCRIBED_EVENT_TYPES)
    assert f"SEAM_WEBHOOK_SECRET={created['secret']}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://hotel.example.com/webhooks/seam", "is not an https:// URL"),
        ("https://hotel.example.com/hooks", "must end in /webhooks/seam"),
    ],
)
def test_register_webhook_refuses_a_url_seam_cannot_use(
    env: dict[str, str],
    seam: SeamStandin,
    capsys: pytest.CaptureFixture[str],
    url: str,
    complaint: str,
) -> None:
    """A plain-HTTP or wrong URL is refused before anything is created at Seam."""
    assert main(["register-webhook", "--url", url]) == 1
    assert complaint in capsys.readouterr().err
    assert [hook["webhook_id"] for hook in seam.all("webhook")] == ["wh-1"]


def test_register_webhook_with_a_bad_key_says_so(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seam refusing the key is one clear line, not a traceback."""
    monkeypatch.setenv("SEAM_API_KEY", "seam_not_the_key")
    assert main(["register-webhook", "--url", "https://hotel.example.com"]) == 1
    assert "Seam rejected SEAM_API_KEY" in capsys.readouterr().err


def test_doctor_passes_with_good_settings(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every service accepts its credentials: doctor says so for each and exits 0."""
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for line in (
        "ok    seam: SEAM_API_KEY opens a production workspace: Stand-in Hotels",
        "ok    webhook: SEAM_WEBHOOK_SECRET signs https://keys.example.com/webhooks/seam",
        "ok    twilio: credentials accepted",
        "ok    sendgrid: key accepted, with Mail Send permission",
        "ok    database: reachable, migrated",
        "ok    broker: Redis answers",
        "ok    templates: every template",
        "ok    sms status: Twilio reports to https://keys.example.com/webhooks/twilio/status",
        "ok    email status: SendGrid's signed events are verified",
        "ok    console: on at /ops: 2 may sign in",
    ):
        assert line in out
    assert "all checks passed" in out


def test_doctor_names_each_bad_credential_and_its_fix(
    env: dict[str, str],
    twilio: TwilioStandin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Wrong keys, a suspended account and an unreachable broker each get a FAIL and a fix,
    and no secret is printed."""
    monkeypatch.setenv("SEAM_API_KEY", "seam_wrong_key_123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong.key")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  seam: Seam rejected SEAM_API_KEY (401 unauthorized)" in out
    assert "FAIL  twilio: Twilio rejected TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN" in out
    assert "FAIL  sendgrid: SendGrid rejected SENDGRID_API_KEY (401)" in out
    assert "FAIL  broker: broker unavailable" in out
    assert out.count("      fix: ") >= 4
    for secret in ("seam_wrong_key_123", "wrong-token", "SG.wrong.key", WEBHOOK_SECRET):
        assert secret not in out


def test_doctor_catches_what_works_but_is_wrong(
    env: dict[str, str],
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A secret no webhook uses, a suspended Twilio account, a key without Mail Send, an
    unmigrated ledger and a broken template are each reported."""
    monkeypatch.setenv("SEAM_WEBHOOK_SECRET", "whsec_" + "QUJD" * 8)
    twilio.account_status = "suspended"
    sendgrid.scopes = ["user.profile.read"]
    sqlite3.connect(tmp_path / "empty.sqlite3").close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    (broken / "pin_code" / "en" / "sms.txt").write_text("Your code: {{ pin_code }")
    monkeypatch.setenv("TEMPLATES_DIR", str(broken))

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  webhook: no webhook in this Seam workspace is signed" in out
    assert "FAIL  twilio: the Twilio account is suspended" in out
    assert "FAIL  sendgrid: SENDGRID_API_KEY may not send mail" in out
    assert f"FAIL  database: the ledger at {tmp_path / 'empty.sqlite3'} is not migrated yet" in out
    assert "fix: run `keycourier migrate`" in out
    assert "revision None" not in out
    templates = [line for line in out.splitlines() if line.startswith("FAIL  templates: ")]
    assert templates == ["FAIL  templates: pin_code/en/sms.txt:1: syntax error: unexpected '}'"]


def test_doctor_warns_about_dry_channels(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Twilio or SendGrid settings the channels run dry: a warning, not a failure."""
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SENDGRID_API_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("SENDGRID_FROM_EMAIL")
    monkeypatch.delenv("TWILIO_FROM_NUMBER")

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "warn  twilio: not configured: SMS runs dry" in out
    assert "warn  sendgrid: not configured: email runs dry" in out
    assert "status:" not in out  # no status reports to ask for from a dry channel


def test_doctor_warns_without_provider_status_reports(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sending for real without PUBLIC_BASE_URL or SendGrid's key works, but nobody would
    learn a message bounced: each is a warning with its fix."""
    monkeypatch.delenv("PUBLIC_BASE_URL")
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY")

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "warn  sms status: PUBLIC_BASE_URL is not set: SMS are sent without status" in out
    assert "warn  email status: SENDGRID_WEBHOOK_PUBLIC_KEY is not set" in out
    assert "fix: set PUBLIC_BASE_URL" in out


def test_doctor_creates_no_ledger_and_says_how_to(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a fresh checkout doctor reports the SQLite ledger that is not there yet, with the
    command that makes it, and does not create it itself."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL")

    main(["doctor"])
    out = capsys.readouterr().out
    assert "warn  database: there is no ledger at var/keycourier.sqlite3 yet" in out
    assert "fix: run `keycourier migrate`, or start `keycourier serve`" in out
    assert not (tmp_path / "var" / "keycourier.sqlite3").exists()


def test_doctor_tells_an_unreachable_seam_from_a_bad_key(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seam out of reach is a network problem to check, not an API key to create."""
    monkeypatch.setenv("SEAM_ENDPOINT", f"http://127.0.0.1:{free_port()}")

    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  seam: cannot reach Seam" in out
    seam_fix = out.split("FAIL  seam: ", 1)[1].splitlines()[1]
    assert "check this machine's network, and SEAM_ENDPOINT" in seam_fix
    assert "create an API key" not in seam_fix


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"OPS_USERS": None, "OPS_SESSION_SECRET": None},
         "warn  console: OPS_USERS is not set: the console (/ops) is off"),
        ({"OPS_SESSION_SECRET": None},
         "FAIL  console: OPS_SESSION_SECRET is not set: the web process will refuse to start"),
        ({"OPS_SESSION_SECRET": "short"}, "FAIL  console: OPS_SESSION_SECRET is too short"),
        ({"OPS_USERS": "desk:plaintext"}, "FAIL  console: OPS_USERS entry 1 is not name:scrypt$"),
    ],
)  # fmt: skip
def test_doctor_checks_the_console_settings(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, str | None],
    line: str,
) -> None:
    """The console's settings are checked like the others: off, half set up, or malformed,
    each with its fix, and no hash or secret printed."""
    for name, value in changes.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)

    main(["doctor"])
    out = capsys.readouterr().out
    assert line in out
    assert out.split(line, 1)[1].splitlines()[1].startswith("      fix: ")
    assert SESSION_SECRET not in out
    assert "scrypt$1" not in out


def test_worker_health_reads_the_heartbeat_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No heartbeat file or a stale one fails the probe; a fresh one passes."""
    heartbeat = tmp_path / "heartbeat"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(heartbeat))
    monkeypatch.setenv("WORKER_PROCESSES", "1")
    assert main(["worker-health"]) == 1

    heartbeat.touch()
    assert main(["worker-health", "--max-age", "60"]) == 0

    old = time.time() - 300
    os.utime(heartbeat, (old, old))
    assert main(["worker-health", "--max-age", "60"]) == 1
    assert "last heartbeat was 300 s ago" in capsys.readouterr().err
