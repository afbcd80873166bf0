"""The keycourier command: templates check, migrate, deliveries."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import redis
from sqlalchemy import inspect

from app.cli import main, parse_duration
from app.ledger.models import DeliveryStatus, utcnow
from app.ledger.store import Ledger, NewDelivery, make_engine
from app.standins.seam import SAMPLES, SeamStandin
from tests.conftest import TEMPLATES


def test_templates_check_passes_on_shipped_templates(capsys: pytest.CaptureFixture[str]) -> None:
    """The templates in the repository render cleanly."""
    assert main(["templates", "check", "--dir", str(TEMPLATES)]) == 0
    assert "all templates" in capsys.readouterr().out


def test_templates_check_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken template fails the check with its file and line."""
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    sms = broken / "pin_code" / "sms.txt"
    sms.write_text("Hello {{ guest_name }}\nyour code is {{ pin_code }\n")

    assert main(["templates", "check", "--dir", str(broken)]) == 1
    assert "pin_code/sms.txt:2:" in capsys.readouterr().out


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
