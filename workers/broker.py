"""kombu's Redis transport, with one Redis client per channel and one round trip per ack; and
the embedded broker's transport, polling sooner (`EmbeddedTransport`).

- kombu builds a new `redis.Redis` for every acknowledgement and every unacked-index update
  (`Channel.conn_or_acquire`), and redis-py 8's constructor is costly: profiled, it was ~8 % of
  a worker's CPU. A client over a connection pool is thread-safe, so one per channel serves all
  threads; the pool, connections and commands are kombu's own.
- kombu's ack emulation records each task it hands out (in the unacked index and hash) and
  removes it once acknowledged, each in a MULTI/ZADD/HSET/EXEC (or ZREM/HDEL) pipeline: four
  commands and replies through redis-py's pipeline machinery, in Celery's one consumer thread,
  for every task. Profiled under the Procfile's worker, the two were ~30 % of the process's
  interpreter time (bench/RESULTS.md). Here each is one EVALSHA of a two-command Lua script:
  the same keys, values and scores, as atomic as the transaction (a script runs alone), one
  reply. Redelivery after a crash (`restore_visible`, `restore_by_tag`) is kombu's unchanged.
  With a `global_keyprefix` (which kombu applies per command name, not to a script's keys)
  kombu's own pipelines are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import time
from typing import Any, cast

from kombu.transport import redis as kombu_redis
from kombu.transport import sqlalchemy as kombu_sqlalchemy
from kombu.transport import virtual
from kombu.utils.json import dumps

# KEYS: the unacked index (a sorted set by time), the unacked hash. ARGV: score, tag, payload.
APPEND = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
# KEYS: the same two. ARGV: the tag.
REMOVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


class QoS(kombu_redis.QoS):
    @property
    def ours(self) -> Channel:
        return cast("Channel", self.channel)

    def append(self, message: Any, delivery_tag: Any) -> None:
        if self.ours.global_keyprefix:
            super().append(message, delivery_tag)
            return
        delivery = message.delivery_info
        payload = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        self.ours.run_script(
            APPEND, [self.unacked_index_key, self.unacked_key], [time(), delivery_tag, payload]
        )
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: Any) -> None:
        if self.ours.global_keyprefix:
            super().ack(delivery_tag)
            return
        self._remove(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue or self.ours.global_keyprefix:
            super().reject(delivery_tag, requeue=requeue)
            return
        self._remove(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def _remove(self, delivery_tag: Any) -> None:
        self.ours.run_script(REMOVE, [self.unacked_index_key, self.unacked_key], [delivery_tag])


class Channel(kombu_redis.Channel):
    QoS = QoS
    global_keyprefix: str
    _shared_client: Any = None
    _scripts: dict[str, Any] | None = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        if self._shared_client is None:
            # A race here builds a second client once: harmless.
            self._shared_client = self._create_client()  # type: ignore[attr-defined]  # not in the stubs
        yield self._shared_client

    def run_script(self, source: str, keys: list[Any], args: list[Any]) -> Any:
        """EVALSHA `source` (loaded once per channel's client; redis-py loads it again if the
        server forgot it, after a restart)."""
        with self.conn_or_acquire() as client:
            if self._scripts is None:
                self._scripts = {}
            script = self._scripts.get(source)
            if script is None:
                script = self._scripts[source] = client.register_script(source)
            return script(keys=keys, args=args)


class Transport(kombu_redis.Transport):
    Channel = Channel


class EmbeddedTransport(kombu_sqlalchemy.Transport):
    """The embedded broker: kombu's SQLAlchemy transport (on SQLite), looking again every
    0.1 s instead of every second. It polls, and waits its interval whenever it finds nothing
    it may take, including while every worker thread already holds a task: one machine
    delivered ~15 events/s, each waiting up to a second to be seen. kombu hands its transport
    options to SQLAlchemy's `create_engine`, so the interval cannot be set there."""

    polling_interval = 0.1
