"""The worker's Redis transport (workers/broker.py) keeps kombu's ack emulation exactly, in one
script call each: a task handed out is in the unacked index and hash as kombu writes them, an
ack or a reject removes it from both, and kombu's own restore hands an unacked task back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue

from workers import broker

QUEUE = "keycourier-broker-test"


@pytest.fixture(params=["workers.broker:Transport", "redis"], ids=["ours", "kombu"])
def channel(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Any]:
    """A channel of our transport, and of kombu's stock one to compare with."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    connection = Connection(redis_url, transport=request.param)
    channel = connection.channel()
    queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE, channel=channel)
    queue.declare()
    if request.param.startswith("workers."):
        assert isinstance(channel.qos, broker.QoS)  # the scripts, not kombu's pipelines
    yield channel
    connection.release()
    client.flushdb()
    client.close()


def publish(channel: Any, body: dict[str, Any]) -> None:
    producer = channel.connection.client.Producer(channel)
    producer.publish(body, exchange=QUEUE, routing_key=QUEUE, serializer="json")


def unacked(redis_url: str, channel: Any) -> tuple[dict[bytes, bytes], list[tuple[bytes, float]]]:
    client = redis.Redis.from_url(redis_url)
    try:
        return (
            client.hgetall(channel.unacked_key),
            client.zrange(channel.unacked_index_key, 0, -1, withscores=True),
        )
    finally:
        client.close()


def test_a_task_handed_out_is_recorded_as_kombu_records_it(channel: Any, redis_url: str) -> None:
    """The unacked hash holds [message, exchange, routing key] under the delivery tag; the
    index holds the tag scored by the time it was handed out."""
    publish(channel, {"task": "one"})
    before = time.time()
    message = Queue(QUEUE, channel=channel).get(no_ack=False)
    assert message is not None
    entries, index = unacked(redis_url, channel)
    tag = message.delivery_tag.encode()
    raw, exchange, routing_key = json.loads(entries[tag])
    assert (exchange, routing_key) == (QUEUE, QUEUE)
    assert raw["properties"]["delivery_tag"] == message.delivery_tag
    [(indexed, score)] = index
    assert indexed == tag
    assert before - 1 <= score <= time.time() + 1


@pytest.mark.parametrize("how", ["ack", "reject"])
def test_ack_or_reject_removes_it_from_both(channel: Any, redis_url: str, how: str) -> None:
    """Once acknowledged (or rejected without requeue) nothing is left to redeliver."""
    publish(channel, {"task": "two"})
    message = Queue(QUEUE, channel=channel).get(no_ack=False)
    assert message is not None
    assert unacked(redis_url, channel) != ({}, [])
    if how == "ack":
        message.ack()
    else:
        message.reject(requeue=False)
    assert unacked(redis_url, channel) == ({}, [])


def test_an_unacked_task_is_handed_back_by_kombus_restore(channel: Any, redis_url: str) -> None:
    """kombu's restore (a warm shutdown's, or the visibility timeout's) reads what we wrote
    and puts the task back on its queue."""
    publish(channel, {"task": "three"})
    queue = Queue(QUEUE, channel=channel)
    message = queue.get(no_ack=False)
    assert message is not None
    assert queue.get(no_ack=True) is None  # the queue is empty while the task is out
    channel.qos.restore_unacked()
    assert unacked(redis_url, channel) == ({}, [])
    again = queue.get(no_ack=True)
    assert again is not None
    assert again.payload == {"task": "three"}
