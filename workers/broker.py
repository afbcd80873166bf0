"""kombu's Redis transport, with one Redis client per channel instead of one per message.

kombu builds a new `redis.Redis` for every acknowledgement and every unacked-index update
(`Channel.conn_or_acquire`), and redis-py 8's constructor is costly: profiled, it was ~8 % of a
worker's CPU. A client over a connection pool is thread-safe, so one per channel serves all
threads; the pool, connections and commands are kombu's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        if self._shared_client is None:
            # A race here builds a second client once: harmless.
            self._shared_client = self._create_client()  # type: ignore[attr-defined]  # not in the stubs
        yield self._shared_client


class Transport(kombu_redis.Transport):
    Channel = Channel
