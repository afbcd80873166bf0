"""How late the web process's event loop wakes up.

A callback that blocks the loop (a database call, a broker publish made without a thread)
delays every request in flight. A task that asks to wake every 10 ms and notes how late it
woke measures that: the lag is at least as long as the longest block since the last wake.
/healthz reports it, so a blocked loop shows in production, not only in a profiler.
"""

from __future__ import annotations

import asyncio
import contextlib

INTERVAL_SECONDS = 0.01


class LoopWatch:
    def __init__(self) -> None:
        self.max_lag_ms = 0.0
        self.recent_max_lag_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def report(self) -> dict[str, float]:
        """Worst lag since start, and since the last report, in milliseconds."""
        report = {
            "max_ms": round(self.max_lag_ms, 2),
            "recent_max_ms": round(self.recent_max_lag_ms, 2),
        }
        self.recent_max_lag_ms = 0.0
        return report

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(INTERVAL_SECONDS)
            lag_ms = max(0.0, (loop.time() - started - INTERVAL_SECONDS) * 1000)
            self.max_lag_ms = max(self.max_lag_ms, lag_ms)
            self.recent_max_lag_ms = max(self.recent_max_lag_ms, lag_ms)
