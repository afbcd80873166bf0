"""Handing a provider's "undelivered" report on to the workers' fallback task."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool

from app.errors import BrokerUnavailable
from app.intake.queue import Enqueuer
from app.ports import Queued, Work

log = logging.getLogger(__name__)


async def hand_on_fallback(enqueuer: Enqueuer, delivery_id: int) -> None:
    """Queue the fallback of a delivery just marked undelivered. A broker that is down is no
    reason to refuse the report: the ledger keeps the fallback due, and the sweeper hands it
    on."""
    try:
        await run_in_threadpool(enqueuer.enqueue, [Queued(Work.AFTER_UNDELIVERED, delivery_id)])
    except BrokerUnavailable as exc:
        log.warning(
            "fallback not queued now (%s); the sweeper will hand it on",
            exc,
            extra={"delivery_id": delivery_id},
        )
