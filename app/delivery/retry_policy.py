"""When to try again after a transient failure."""

from __future__ import annotations

import random

FIRST_DELAY_SECONDS = 5.0
# Below the broker's visibility timeout (workers/celery_app.py), so a countdown runs once.
MAX_DELAY_SECONDS = 15 * 60.0


def backoff_seconds(failures: int, hint: float | None = None) -> float:
    """5 s, 10 s, 20 s ... up to 15 min, with ±20 % jitter, never sooner than the provider asked.

    Jitter spreads the retries of many deliveries that failed together (a provider outage)
    so they do not all come back in the same second.
    """
    delay = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** max(0, failures - 1))
    delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not cryptography
    chosen: float = min(MAX_DELAY_SECONDS, max(delay, hint or 0.0))
    return chosen
