"""The Celery settings that "nothing lost, nothing sent twice" depends on."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.delivery.retry_policy import MAX_DELAY_SECONDS, backoff_seconds
from app.intake.queue import RECONCILE, SWEEP
from app.settings import load_settings
from workers.broker import EmbeddedTransport
from workers.celery_app import VISIBILITY_TIMEOUT_SECONDS, create_celery_app


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the app makes var/ for beat's state


def test_tasks_are_acknowledged_late_and_handed_back_when_a_worker_dies() -> None:
    """acks_late, reject_on_worker_lost and prefetch 1: a dying worker drops no task."""
    conf = create_celery_app(load_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"})).conf

    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit > conf.task_soft_time_limit > 0


def test_visibility_timeout_outlasts_every_countdown() -> None:
    """A retry countdown shorter than Redis's visibility timeout runs once, not twice."""
    conf = create_celery_app(load_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"})).conf

    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert VISIBILITY_TIMEOUT_SECONDS > MAX_DELAY_SECONDS
    assert max(backoff_seconds(n, hint=10_000) for n in range(1, 40)) <= MAX_DELAY_SECONDS


def test_beat_runs_the_sweeper_and_reconcile_on_the_configured_intervals() -> None:
    """Beat schedules the sweeper and reconcile, each expiring after one interval."""
    settings = load_settings({"SWEEP_INTERVAL_SECONDS": "7", "RECONCILE_INTERVAL_SECONDS": "300"})
    schedule = create_celery_app(settings).conf.beat_schedule

    assert schedule["sweep"]["task"] == SWEEP
    assert schedule["sweep"]["schedule"] == 7
    assert schedule["sweep"]["options"]["expires"] == 7
    assert schedule["reconcile"]["task"] == RECONCILE
    assert schedule["reconcile"]["schedule"] == 300


def test_backoff_grows_and_honours_the_provider_hint() -> None:
    """Each failure waits longer (within jitter), and never less than the provider asked."""
    assert 4 <= backoff_seconds(1) <= 6
    assert 8 <= backoff_seconds(2) <= 12
    assert 32 <= backoff_seconds(4) <= 48
    assert backoff_seconds(1, hint=120) >= 120


def test_the_embedded_broker_looks_again_within_a_tenth_of_a_second(tmp_path: Path) -> None:
    """Single-machine mode: kombu's SQLAlchemy transport on the SQLite file, polling every
    0.1 s (kombu's 1 s held each thread's next task up to a second: ~15 events/s on one
    machine); a message sent through it is read back."""
    app = create_celery_app(load_settings({}))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, EmbeddedTransport)
        assert connection.transport.polling_interval == 0.1
        queue = connection.SimpleQueue("probe")
        queue.put({"n": 1})
        message = queue.get(timeout=2)
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
    assert (tmp_path / "var" / "broker.sqlite3").is_file()
