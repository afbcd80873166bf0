"""The `keycourier` command, run for real, says what is wrong in one line and exits non-zero:
no traceback for a ledger never migrated, a database or Seam out of reach, or a bad setting."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import BrokerUnavailable
from app.ops.failures import explain
from tests.processes import free_port

# The console script installed beside this Python (the venv's), as an operator runs it.
KEYCOURIER = Path(sys.executable).parent / "keycourier"


def keycourier(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `keycourier` command in `cwd`, with nothing but `env` configured."""
    return subprocess.run(
        [str(KEYCOURIER), *args],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line the command printed (stdout and stderr together)."""
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert result.returncode != 0
    assert "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [["deliveries"], ["sweep"]])
def test_a_missing_ledger_is_one_line_and_is_not_created(
    tmp_path: Path, command: list[str]
) -> None:
    """On a fresh checkout (no var/keycourier.sqlite3) deliveries and sweep say to migrate,
    and leave no empty ledger behind."""
    result = keycourier(tmp_path, *command)
    line = one_line(result)
    assert line.startswith("keycourier: there is no ledger at var/keycourier.sqlite3 yet")
    assert "run `keycourier migrate`" in line
    assert not (tmp_path / "var" / "keycourier.sqlite3").exists()


@pytest.mark.parametrize("command", [["deliveries"], ["sweep"], ["reconcile", "--since", "1h"]])
def test_a_ledger_never_migrated_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """A ledger file without tables (never migrated) is named, with the fix, in one line."""
    (tmp_path / "var").mkdir()
    sqlite3.connect(tmp_path / "var" / "keycourier.sqlite3").close()

    result = keycourier(tmp_path, *command, SEAM_API_KEY="seam_test_key")
    assert one_line(result) == (
        "keycourier: the ledger at var/keycourier.sqlite3 is not migrated yet: "
        "run `keycourier migrate`"
    )
    assert result.returncode == 1


def test_reconcile_without_seam_is_one_line(tmp_path: Path) -> None:
    """reconcile when Seam cannot be reached says so and what to check, in one line."""
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrated = keycourier(tmp_path, "migrate", DATABASE_URL=ledger)
    assert migrated.returncode == 0, migrated.stderr

    result = keycourier(
        tmp_path,
        "reconcile",
        "--since",
        "1h",
        DATABASE_URL=ledger,
        SEAM_API_KEY="seam_test_key",
        SEAM_ENDPOINT=f"http://127.0.0.1:{free_port()}",
    )
    line = one_line(result)
    assert line.startswith("keycourier: cannot reach Seam (events.list failed: ConnectError)")
    assert "check this machine's network (and SEAM_ENDPOINT, if you set it)" in line
    assert result.returncode == 1


@pytest.mark.parametrize("command", ["deliveries", "migrate"])
def test_an_unreachable_database_is_one_line_without_its_password(
    tmp_path: Path, command: str
) -> None:
    """A PostgreSQL nobody answers on is named without its password, with what to check."""
    url = f"postgresql://keycourier:hunter2-secret@127.0.0.1:{free_port()}/ledger"
    result = keycourier(tmp_path, command, DATABASE_URL=url)
    line = one_line(result)
    assert line.startswith("keycourier: cannot reach the ledger at postgresql+psycopg://keycourier")
    assert "check DATABASE_URL" in line
    assert "hunter2-secret" not in line


def test_a_malformed_setting_gives_its_hint_once(tmp_path: Path) -> None:
    """A bad SEAM_API_KEY is one line, exit 2, with one hint (not the validator's and the
    table's), and never the value given."""
    result = keycourier(tmp_path, "deliveries", SEAM_API_KEY="sk_live_not_seam")
    line = one_line(result)
    assert result.returncode == 2
    assert line == (
        "keycourier: configuration error: SEAM_API_KEY is invalid: does not look like a Seam "
        "API key (expected seam_...)"
    )
    assert "sk_live_not_seam" not in line


def test_a_broker_out_of_reach_is_explained_in_one_line() -> None:
    """A broker that cannot be reached is explained as one line naming REDIS_URL, exit 1."""
    explained = explain(BrokerUnavailable("broker unavailable: ConnectionError"))
    assert explained == (
        "cannot reach the broker (broker unavailable: ConnectionError): "
        "check REDIS_URL and that Redis is up",
        1,
    )


def test_other_errors_keep_their_traceback() -> None:
    """Only keycourier's own errors are explained: anything else is a bug to see in full."""
    assert explain(RuntimeError("a bug")) is None
