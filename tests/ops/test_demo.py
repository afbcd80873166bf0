"""`keycourier demo` run as a newcomer runs it: it ends when every delivery is final, shows
each message (the card-ready ones too) for a stay that starts tomorrow, and says what next."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import ROOT


def test_demo_waits_for_every_delivery_and_says_what_next(tmp_path: Path) -> None:
    """No delivery is left pending or sending in the final ledger, all seven are shown (the
    card-ready SMS and email included), the stay is dated from tomorrow, not 2053, and the
    output ends with how to run for real and open the console."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "app", "demo"],
        cwd=ROOT,
        env={**env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr

    ledger = out.split("4. The ledger (keycourier deliveries):", 1)[1].split("\n5. ", 1)[0]
    rows = [line.split() for line in ledger.strip().splitlines()[1:]]
    assert len(rows) == 7
    assert {row[6] for row in rows} == {"dry_run"}  # the status column: all final
    assert {(row[3], row[4]) for row in rows if row[3] == "card_ready"} == {
        ("card_ready", "sms"),
        ("card_ready", "email"),
    }
    assert "your key card for Room 204 is ready" in out
    assert "Your key card is ready at the front desk" in out

    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert f"{tomorrow:%b} {tomorrow.day}, {tomorrow.year}, 3:00 PM" in out
    assert "2053" not in out

    steps = out.split("\n5. What next", 1)[1]
    for step in ("SEAM_API_KEY", "keycourier ops-user NAME", "/ops/", "keycourier deliveries"):
        assert step in steps


HARBOUR = "2f8e6c1a-0b4d-4e7f-9a3c-5d6e7f809a1b"
LUMIERE = "661025d3-c1d2-403c-83a8-af153aaedfbc"
GROUP = f"""
[workspaces."{HARBOUR}"]
name = "Harbour Inn"
api_key_env = "SEAM_API_KEY_HARBOUR"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_HARBOUR"

[workspaces."{LUMIERE}"]
name = "Hotel Lumiere"
api_key_env = "SEAM_API_KEY_LUMIERE"
webhook_secret_env = "SEAM_WEBHOOK_SECRET_LUMIERE"
"""


def test_demo_of_a_hotel_group_covers_every_workspace(tmp_path: Path) -> None:
    """With SEAM_WORKSPACES_FILE, each workspace's events go to its own /webhooks/seam/<id>,
    signed with its own secret, and are accepted; another hotel's secret and another hotel's
    event are refused; every hotel's seven deliveries end final, each message and ledger row
    naming its hotel. The real keys the file names are neither needed nor shown."""
    (tmp_path / "workspaces.toml").write_text(GROUP, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL"))}
    real_key = "seam_live_key_of_harbour_inn_0123"
    env.update(
        SEAM_WORKSPACES_FILE=str(tmp_path / "workspaces.toml"), SEAM_API_KEY_HARBOUR=real_key
    )
    result = subprocess.run(
        [sys.executable, "-m", "app", "demo"],
        cwd=ROOT,
        env={**env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr

    posted = out.split("\n1. ", 1)[1].split("\n2. ", 1)[0]
    harbour, lumiere = posted.split(f"Harbour Inn: POST /webhooks/seam/{HARBOUR}")[1].split(
        f"Hotel Lumiere: POST /webhooks/seam/{LUMIERE}"
    )
    lumiere = lumiere.split("...and")[0]
    for name in ("issued.code", "issued.mobile_key", "card_encoding_required"):
        assert f"access_method.{name}" in harbour
        assert f"access_method.{name}" in lumiere
    assert harbour.count("HTTP 200 received") == lumiere.count("HTTP 200 received") == 3
    assert "HTTP 200 duplicate" in posted
    assert "HTTP 400 invalid_signature" in posted
    assert "HTTP 400 wrong_workspace" in posted
    card = out.split("\n3. ", 1)[1].split("\n4. ", 1)[0]
    assert card.count("access_method.issued.card                -> HTTP 200 received") == 2

    for hotel in ("Harbour Inn", "Hotel Lumiere"):
        assert f"--- SMS to +1********23 ({hotel}) ---" in out
        assert f"--- Email to f***@hotel.example ({hotel}): Key card to encode" in out
    ledger = out.split("4. The ledger (keycourier deliveries):", 1)[1].split("\n5. ", 1)[0]
    header, *rows = [line.split() for line in ledger.strip().splitlines()]
    assert header[:4] == ["id", "created", "(UTC)", "hotel"]
    assert len(rows) == 14
    assert {row[8] for row in rows} == {"dry_run"}  # after the hotel's two words
    hotels = [" ".join(row[3:5]) for row in rows]
    assert hotels.count("Harbour Inn") == hotels.count("Hotel Lumiere") == 7

    steps = out.split("\n5. What next", 1)[1]
    assert "SEAM_WORKSPACES_FILE" in steps
    assert "/webhooks/seam/<workspace_id>" in steps
    assert real_key not in out + result.stderr
