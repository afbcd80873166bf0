"""A worker warms the ledger up as it gets ready (`warm_up`: the mappers, the hot statements
compiled, the first connection), and threads that need a statement not compiled yet compile it
once between them: a worker's first tasks arrive together, and each compile is milliseconds of
CPU they would all wait on."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Executable, bindparam, select

from app.context import Context
from app.events.tries import handle_event
from app.ledger import base
from app.ledger.models import EventStatus
from app.ledger.store import EVENTS, Ledger
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import ROOT
from tests.events.test_pipeline import record


def _count_compiles(monkeypatch: pytest.MonkeyPatch, pause: float = 0.0) -> list[Executable]:
    compiled: list[Executable] = []
    original = base._Lone.compile.__func__  # type: ignore[attr-defined]

    def counting(cls: type[base._Lone], statement: Executable, dialect: Any) -> base._Lone:
        compiled.append(statement)
        time.sleep(pause)
        return original(cls, statement, dialect)  # type: ignore[no-any-return]

    monkeypatch.setattr(base._Lone, "compile", classmethod(counting))
    return compiled


def test_an_event_after_warm_up_compiles_nothing(
    services: Context,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every statement an issued PIN's event runs on the driver's connection (start, plan,
    claim, both attempts, the end) was compiled ahead; SQLite has none to compile."""
    compiled = _count_compiles(monkeypatch)
    services.ledger.warm_up()
    ahead = len(compiled)
    event_id = record(services, "access_method.issued.code")

    outcome = handle_event(services, event_id)

    assert outcome.status == EventStatus.PROCESSED, outcome.detail
    assert (len(twilio.sent), len(sendgrid.sent)) == (1, 1)
    if services.ledger.engine.dialect.name == "postgresql":
        assert ahead >= 10
        assert compiled[ahead:] == []
    else:
        assert compiled == []


def test_threads_that_miss_together_compile_once(
    clean_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger.from_url(clean_postgres_url)
    statement = select(EVENTS.c.id).where(EVENTS.c.id == bindparam("b_id"))
    compiled = _count_compiles(monkeypatch, pause=0.05)
    start = threading.Barrier(8)
    got: list[base._Lone] = []

    def need() -> None:
        start.wait()
        got.append(ledger._lone(statement))

    threads = [threading.Thread(target=need) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.engine.dispose()

    assert compiled == [statement]
    assert len(got) == 8
    assert all(lone is got[0] for lone in got)


def test_warm_up_configures_the_mappers_on_either_backend(tmp_path: Path) -> None:
    """SQLAlchemy configures the ORM's mappers on the first model built, unless warm_up
    did: in a fresh interpreter (the configuration is once per process), on SQLite, which has
    no statements to compile, the models are configured once it has run."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    program = f"""
from app.ledger.models import Event
from app.ledger.store import Ledger
ledger = Ledger.from_url({url!r})
before = Event.__mapper__.configured
ledger.warm_up()
print(before, Event.__mapper__.configured)
"""
    found = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert found.stdout.split() == ["False", "True"], found.stderr


def test_warm_up_leaves_a_connection_open_in_the_pool(database_url: str) -> None:
    """The first task finds a connection waiting, the dialect's first-connect checks done."""
    ledger = Ledger.from_url(database_url)
    try:
        assert ledger.engine.pool.checkedin() == 0
        ledger.warm_up()
        assert ledger.engine.pool.checkedin() == 1
    finally:
        ledger.engine.dispose()
