"""Running keycourier as real processes in tests: web, worker, and a Redis of the test's own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from app.ops.demo import free_port, wait_for
from app.standins.seam import SAMPLES
from app.standins.signing import signed_headers
from tests.conftest import WEBHOOK_SECRET

__all__ = [
    "Processes",
    "RedisServer",
    "free_port",
    "post_sample",
    "ready",
    "running_web",
    "wait_for",
]


class Processes:
    """keycourier processes (`python -m app ...`), each with its output captured to a file."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        # One worker process per `keycourier worker` unless a test asks for more: the tests
        # are about one worker's behaviour, whatever the cores of the machine running them.
        self.env = {"WORKER_PROCESSES": "1", **os.environ, **env}
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        output = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            cwd=self.workdir,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a dyno or a pod would be
        )
        self.running[name] = process
        return process

    def signal(self, name: str, signum: signal.Signals, *, whole_group: bool = False) -> None:
        process = self.running[name]
        if whole_group:
            os.killpg(process.pid, signum)  # Heroku: SIGTERM to every process of the dyno
        else:
            process.send_signal(signum)  # Kubernetes: SIGTERM to PID 1 only

    def wait(self, name: str, timeout: float) -> int:
        return self.running[name].wait(timeout=timeout)

    def stop(self) -> str:
        """Stop everything still running; the logs of every process, joined."""
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return "\n".join(path.read_text() for path in sorted(self.workdir.glob("*.log")))


class RedisServer:
    """A redis-server of the test's own, keeping nothing on disk, that tests stop and restart."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/services installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_for(self._answers, 10):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # no persistence: whatever was queued is gone
            self.process.wait()
            self.process = None

    def queue_length(self) -> int:
        client = redis.Redis.from_url(self.url)
        try:
            return int(client.llen("keycourier"))
        finally:
            client.close()

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()


@contextmanager
def running_web(
    env: dict[str, str], workdir: Path, port: int | None = None
) -> Iterator[tuple[str, Processes]]:
    """keycourier's web process on `port` (default: a free one), ready; every process started
    stopped after."""
    port = port or free_port()
    processes = Processes({**env, "PORT": str(port)}, workdir)
    processes.start("web", "serve", "--no-worker")
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: ready(base), 60), "web process never became ready"
        yield base, processes
    finally:
        processes.stop()


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def post_sample(base: str, name: str, msg_id: str, **changes: object) -> httpx.Response:
    """POST a sample event, changed as asked, signed as Seam's Svix would sign it."""
    event = json.loads((SAMPLES / "events" / f"{name}.json").read_text())
    event.update(changes)
    body = json.dumps(event).encode()
    headers = signed_headers(WEBHOOK_SECRET, body, msg_id=msg_id)
    return httpx.post(f"{base}/webhooks/seam", content=body, headers=headers, timeout=10)
