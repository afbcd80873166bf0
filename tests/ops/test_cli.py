"""The keycourier command: templates check, migrate, deliveries."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import redis
from sqlalchemy import inspect

from app.ledger.models import DeliveryStatus, utcnow
from app.ledger.store import Ledger, NewDelivery, make_engine
from app.ops.cli import main, parse_duration
from app.standins.seam import SAMPLES, SeamStandin
from tests.conftest import TEMPLATES


def test_templates_check_passes_on_shipped_templates(capsys: pytest.CaptureFixture[str]) -> None:
    """The templates in the repository pass, and every SMS is listed with its segment count."""
    assert main(["templates", "check", "--dir", str(TEMPLATES)]) == 0
    out = capsys.readouterr().out
    assert "all templates" in out
    assert "SMS pin_code/fr/sms.txt: 1 segment, GSM-7," in out
    assert "SMS instant_key/en/sms.txt (without dates or room): 1 segment, GSM-7," in out


def test_templates_check_prints_each_line_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each SMS is listed once, and a too-long notice (a message without a credential, which
    the check also renders with one to prove it never shows it) is refused once."""
    assert main(["templates", "check", "--dir", str(TEMPLATES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(set(lines))
    assert lines.count("SMS card_ready/en/sms.txt: 1 segment, GSM-7, 99 characters") == 1

    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "card_ready" / "en" / "sms.txt").write_text("Your card is ready." + " Welcome!" * 40)
    assert main(["templates", "check", "--dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert out.count("card_ready/en/sms.txt: the SMS is too long: ") == 1
    assert len(out.splitlines()) == len(set(out.splitlines()))


def test_templates_check_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken template fails the check with its file and line."""
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    sms = broken / "pin_code" / "en" / "sms.txt"
    sms.write_text("Hello {{ guest_name }}\nyour code is {{ pin_code }\n")

    assert main(["templates", "check", "--dir", str(broken)]) == 1
    assert "pin_code/en/sms.txt:2: syntax error" in capsys.readouterr().out


def test_templates_check_uses_the_sms_segment_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A two-segment SMS passes by default (limit 2) and fails with SMS_MAX_SEGMENTS=1."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "pin_code" / "en" / "sms.txt").write_text("Code {{ pin_code }}." + " Welcome!" * 20)
    assert main(["templates", "check", "--dir", str(folder)]) == 0
    monkeypatch.setenv("SMS_MAX_SEGMENTS", "1")
    assert main(["templates", "check", "--dir", str(folder)]) == 1
    assert "pin_code/en/sms.txt: the SMS is too long: 2 segments, GSM-7" in capsys.readouterr().out


def test_preview_prints_sms_and_email_and_saves_the_html(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """preview pin_code --locale fr prints the French SMS and email, and the HTML file's path."""
    assert (
        main(["templates", "preview", "pin_code", "--locale", "fr", "--dir", str(TEMPLATES)]) == 0
    )
    out = capsys.readouterr().out
    assert "Bonjour Alex, votre code de porte pour Room 204 est 1234" in out
    assert "--- Email subject: Votre code de porte pour Room 204" in out
    assert "Code de porte : 1234" in out
    uri = out.split("open ")[1].split(" in a browser")[0]
    html = Path(uri.removeprefix("file://")).read_text(encoding="utf-8")
    assert 'lang="fr"' in html
    assert "1234" in html


def test_preview_one_channel_only(capsys: pytest.CaptureFixture[str]) -> None:
    """--channel sms prints the SMS and no email; a front-desk message has no SMS to show."""
    assert (
        main(["templates", "preview", "code_changed", "--channel", "sms", "--dir", str(TEMPLATES)])
        == 0
    )
    out = capsys.readouterr().out
    assert "has changed. Your new code is 1234" in out
    assert "Email" not in out
    assert (
        main(
            ["templates", "preview", "front_desk_card", "--channel", "sms", "--dir", str(TEMPLATES)]
        )
        == 2
    )
    assert "email only" in capsys.readouterr().err


def test_preview_with_an_event_uses_its_workspace_and_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--event takes the event's workspace (so fr and Paris time from properties.toml) and code."""
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES, folder)
    event = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
    (folder / "properties.toml").write_text(
        f'[workspaces."{event["workspace_id"]}"]\nlocale = "fr"\ntimezone = "Europe/Paris"\n'
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event | {"code": "86420"}))

    args = ["templates", "preview", "pin_code", "--channel", "sms", "--event", str(event_file)]
    assert main([*args, "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "est 86420, valable du ven. 20 juin 2025, 17:00" in out


def test_preview_refuses_what_it_cannot_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown message or an event file that is not JSON is a clear error, exit 2."""
    assert main(["templates", "preview", "pin_kode", "--dir", str(TEMPLATES)]) == 2
    assert "the messages are: pin_code" in capsys.readouterr().err
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    assert (
        main(["templates", "preview", "pin_code", "--event", str(bad), "--dir", str(TEMPLATES)])
        == 2
    )
    assert "is not a JSON Seam event" in capsys.readouterr().err


def test_preview_of_a_broken_template_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Previewing a template with a typo prints file:line and the reason, exit 1."""
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    (broken / "instant_key" / "fr" / "sms.txt").write_text("Bonjour {{ guest_nmae }}")
    args = ["templates", "preview", "instant_key", "--locale", "fr", "--dir", str(broken)]
    assert main(args) == 1
    assert "instant_key/fr/sms.txt:1:" in capsys.readouterr().err


def test_migrate_creates_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`keycourier migrate` creates every ledger table in an empty database."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)

    assert main(["migrate"]) == 0
    tables = set(inspect(make_engine(url)).get_table_names())
    assert {"events", "deliveries", "attempts", "front_desk_flags"} <= tables


def test_deliveries_lists_recent_with_masked_destinations(
    ledger: Ledger,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`keycourier deliveries` shows recent deliveries and never a full phone number."""
    ledger.plan_delivery(
        NewDelivery(
            access_method_id="am-1",
            kind="pin_code",
            channel="sms",
            credential_fingerprint="fp",
            event_id=None,
            access_grant_id="ag-1",
            user_identity_id="ui-1",
            guest_name="Alex Rivera",
            reservation="reservation-8841",
            destination_masked="+1********23",
            status=DeliveryStatus.PENDING,
        )
    )
    monkeypatch.setenv("DATABASE_URL", database_url)

    assert main(["deliveries"]) == 0
    out = capsys.readouterr().out
    assert "pin_code" in out
    assert "+1********23" in out
    assert "pending" in out


def test_deliveries_of_a_hotel_group_name_each_ones_hotel(
    ledger: Ledger,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With SEAM_WORKSPACES_FILE, a hotel column names each delivery's workspace as the file
    does (an unlisted workspace by its id); no key or secret is needed to list them."""
    for number, workspace in enumerate(("ws-harbour", "ws-elsewhere"), start=1):
        ledger.plan_delivery(
            NewDelivery(
                access_method_id=f"am-{number}", kind="pin_code", channel="sms",
                credential_fingerprint="fp", event_id=None, access_grant_id="ag-1",
                user_identity_id="ui-1", guest_name="Alex Rivera", reservation="r-1",
                destination_masked="+1********23", status=DeliveryStatus.PENDING,
                workspace_id=workspace,
            )
        )  # fmt: skip
    (tmp_path / "workspaces.toml").write_text(
        '[workspaces."ws-harbour"]\nname = "Harbour Inn"\napi_key_env = "SEAM_API_KEY_HARBOUR"\n'
        'webhook_secret_env = "SEAM_WEBHOOK_SECRET_HARBOUR"\n'
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SEAM_WORKSPACES_FILE", str(tmp_path / "workspaces.toml"))
    monkeypatch.setenv("CREDENTIAL_HASH_KEY", "a group's own long random fingerprint key")

    assert main(["deliveries"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["id", "created", "(UTC)", "hotel"]
    assert [row.split()[3:5] for row in rows] == [["ws-elsewhere", "pin_code"], ["Harbour", "Inn"]]


def test_configuration_error_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed setting makes any command exit 2 with one line naming it."""
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")

    assert main(["deliveries"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keycourier: configuration error: DATABASE_URL is invalid")
    assert "\n" not in err


def test_reconcile_command_queues_events_the_ledger_lacks(
    seam: SeamStandin,
    redis_url: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`keycourier reconcile --since 24h` records missed events and queues them, once."""
    event = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
    seam.put_event({**event, "created_at": utcnow().isoformat()})
    for name, value in {
        "SEAM_API_KEY": seam.api_key,
        "SEAM_ENDPOINT": seam.url,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    assert main(["reconcile", "--since", "24h"]) == 0
    assert main(["reconcile", "--since", "24h"]) == 0

    first, second = capsys.readouterr().out.strip().splitlines()
    assert first == "listed 1 events from Seam; 1 were new to the ledger, 1 queued for processing"
    assert second.startswith("listed 1 events from Seam; 0 were new")
    assert redis.Redis.from_url(redis_url).llen("keycourier") == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("2d", 172800), ("30", 30)]
)
def test_durations(text: str, seconds: int) -> None:
    """--since takes hours, minutes, days or seconds."""
    assert parse_duration(text).total_seconds() == seconds


def test_bad_duration_is_refused() -> None:
    """A duration that is not one is a clear error."""
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration("yesterday")
