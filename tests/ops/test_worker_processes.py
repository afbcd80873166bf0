"""`keycourier worker` with several processes (WORKER_PROCESSES, or one per core): each
Celery worker beats its own heartbeat, worker-health asks all of them, a SIGTERM to the
parent (Kubernetes' PID 1) stops every one warmly, and one that dies takes the others down
with it so the platform restarts the whole set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.standins.seam import SeamStandin
from tests.conftest import provider_env
from tests.processes import Processes, wait_for

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def two_workers(
    seam: SeamStandin, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Processes, Path, subprocess.Popen[bytes]]]:
    heartbeat = tmp_path / "heartbeat"
    env = {
        **provider_env(seam, None, None),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "WORKER_HEARTBEAT_FILE": str(heartbeat),
        "WORKER_PROCESSES": "2",
    }
    processes = Processes(env, tmp_path)
    parent = processes.start("worker", "worker", "--concurrency", "2")
    files = [tmp_path / "heartbeat.0", tmp_path / "heartbeat.1"]
    assert wait_for(lambda: all(f.exists() for f in files), 60), processes.stop()
    yield processes, heartbeat, parent
    processes.stop()


def worker_health(processes: Processes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "worker-health", "--max-age", "30"],
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_process_beats_and_health_asks_all(
    two_workers: tuple[Processes, Path, subprocess.Popen[bytes]],
) -> None:
    """Two Celery workers under one parent, each with its own heartbeat file; worker-health
    passes while both beat and fails once one file is missing."""
    processes, heartbeat, parent = two_workers
    workers = children(parent.pid)
    assert len(workers) == 2
    assert not heartbeat.exists()  # the single-process file is not used
    assert worker_health(processes).returncode == 0

    # Paused, the workers cannot touch their files again before worker-health reads them (a
    # live worker recreates its file within a heartbeat: 2 s, about what starting the
    # command takes on a busy machine).
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        (heartbeat.parent / "heartbeat.1").unlink()
        result = worker_health(processes)
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    assert result.returncode == 1
    assert "heartbeat.1 is missing" in result.stderr


def test_sigterm_to_the_parent_stops_every_worker(
    two_workers: tuple[Processes, Path, subprocess.Popen[bytes]],
) -> None:
    """Kubernetes signals PID 1 only: the parent passes SIGTERM on, each worker shuts down
    warmly and the parent exits 0."""
    processes, _, parent = two_workers
    workers = children(parent.pid)
    processes.signal("worker", signal.SIGTERM)
    assert processes.wait("worker", timeout=30) == 0
    assert not any(alive(pid) for pid in workers)


def test_one_worker_dying_stops_the_set(
    two_workers: tuple[Processes, Path, subprocess.Popen[bytes]],
) -> None:
    """A worker killed outright makes the parent stop the other and exit non-zero, so the
    platform restarts all of them rather than running half a worker unnoticed."""
    processes, _, parent = two_workers
    first, second = children(parent.pid)
    os.kill(first, signal.SIGKILL)
    assert processes.wait("worker", timeout=30) != 0
    assert wait_for(lambda: not alive(second), 10)
    assert "worker process" in (processes.workdir / "worker.log").read_text()


def test_a_worker_is_ready_to_send_before_it_says_so(
    seam: SeamStandin, redis_url: str, tmp_path: Path
) -> None:
    """By the time its health file exists, a worker has built what every task uses (the SDKs,
    the templates read and checked): its first guests do not wait for it, and its start-up
    line comes after the templates' line."""
    heartbeat = tmp_path / "heartbeat"
    env = {
        **provider_env(seam, None, None),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "WORKER_HEARTBEAT_FILE": str(heartbeat),
    }
    processes = Processes(env, tmp_path)
    processes.start("worker", "worker", "--concurrency", "2")
    try:
        assert wait_for(heartbeat.exists, 60)
        log = (tmp_path / "worker.log").read_text()
    finally:
        processes.stop()
    assert "templates loaded from" in log, log
    assert log.index("templates loaded from") < log.index("keycourier worker starting"), log
