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
