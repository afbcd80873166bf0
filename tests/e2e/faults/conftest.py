"""What the fault tests share: a Redis broker of their own (a real redis-server the test can
stop and start) and a ledger on the test's clean PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.ledger.store import Ledger
from tests.processes import RedisServer


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ledger(clean_postgres_url: str) -> Iterator[Ledger]:
    ledger = Ledger.from_url(clean_postgres_url)
    yield ledger
    ledger.engine.dispose()
