"""The relay: beat runs it every STATUS_WEBHOOK_POLL_SECONDS. It hands the workers, by id, the
status webhooks the ledger says are owed now (new ones, and retries whose time has come). What
it hands on is not handed on again for a while (`PATIENCE`), unless a try ends first; handing
one on twice is harmless (the send claims it)."""

from __future__ import annotations

from datetime import timedelta

from app.ledger.models import utcnow
from app.ledger.store import Ledger

BATCH = 200
PATIENCE = timedelta(minutes=1)


def owed_now(ledger: Ledger) -> list[int]:
    now = utcnow()
    return ledger.due_status_webhook_ids(now, now - PATIENCE, BATCH)
