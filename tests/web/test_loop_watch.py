"""The event-loop lag watch that /healthz reports."""

from __future__ import annotations

import asyncio
import time

from app.web.loop_watch import LoopWatch


def test_a_blocked_loop_shows_as_lag() -> None:
    """Blocking the loop for 50 ms is reported as at least that much lag, then reset."""

    async def scenario() -> tuple[dict[str, float], dict[str, float]]:
        watch = LoopWatch()
        watch.start()
        await asyncio.sleep(0.05)
        time.sleep(0.05)  # a blocking call on the loop, the thing the watch exists to catch
        await asyncio.sleep(0.05)
        first = watch.report()
        await asyncio.sleep(0.05)
        second = watch.report()
        await watch.stop()
        return first, second

    first, second = asyncio.run(scenario())

    assert first["max_ms"] >= 40
    assert first["recent_max_ms"] >= 40
    assert second["recent_max_ms"] < 40  # the recent figure restarts at each report
    assert second["max_ms"] >= 40
