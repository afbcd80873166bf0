"""create_app and the broker: the web process publishes to Redis itself, and is handed the
embedded broker's enqueuer by `keycourier serve` (app/ops/cli.py), never importing workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigError
from app.ledger.store import Ledger
from app.settings import load_settings
from app.web.main import create_app
from tests.conftest import WEBHOOK_SECRET


def test_without_redis_or_an_enqueuer_the_web_process_refuses_to_start(tmp_path: Path) -> None:
    """With no REDIS_URL (the embedded broker) and no enqueuer given, create_app says so in one
    line naming REDIS_URL instead of publishing nowhere."""
    ledger = Ledger.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    settings = load_settings({"SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET})
    with pytest.raises(ConfigError, match="REDIS_URL is not set"):
        create_app(settings, ledger=ledger)
