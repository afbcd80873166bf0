"""Several worker processes under one `keycourier worker`: one per core (app/ops/cores.py).

With one process `keycourier worker` replaces itself with Celery, as before. With more it
stays as their parent and:
- starts each Celery worker with its own heartbeat file (`keycourier worker-health` reads
  them all: every process must be alive) and its own metrics port (WORKER_METRICS_PORT + n);
- passes SIGTERM, SIGINT and SIGQUIT on to every worker, so Kubernetes' SIGTERM (sent to
  PID 1 only) starts each one's warm shutdown: running sends finish, reserved tasks go back
  to the queue. On Heroku every process of the dyno gets SIGTERM anyway; a second one is
  the same warm shutdown (Celery sets the same flag);
- when one worker ends on its own (a crash), stops the others the same way and exits with
  its status, so the platform restarts the whole set (Heroku restarts a crashed dyno,
  Kubernetes the container): no half-size worker runs unnoticed;
- reaps its children (as PID 1 in a container it must).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def heartbeat_files(base: Path, processes: int) -> list[Path]:
    """The file each worker process touches: the configured one for a single process,
    `<file>.<n>` for each of several."""
    if processes == 1:
        return [base]
    return [base.with_name(f"{base.name}.{n}") for n in range(processes)]


def process_env(
    n: int, processes: int, heartbeat: Path, metrics_port: int | None
) -> dict[str, str]:
    """What worker process `n` of `processes` is told apart from the others."""
    env = {"WORKER_HEARTBEAT_FILE": str(heartbeat_files(heartbeat, processes)[n])}
    if metrics_port is not None:
        env["WORKER_METRICS_PORT"] = str(metrics_port + n)
    return env


def run_processes(commands: Sequence[tuple[Sequence[str], Mapping[str, str]]]) -> int:
    """Run each (argv, extra environment) until all have ended; the exit status is the first
    one that ended on its own (0 when all ended because we were asked to stop)."""
    children: list[subprocess.Popen[bytes]] = []
    state = {"stopping": False, "status": 0}

    def forward(signum: int, _frame: FrameType | None) -> None:
        state["stopping"] = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        for argv, extra in commands:
            children.append(subprocess.Popen(list(argv), env={**os.environ, **extra}))  # noqa: S603 - our own command lines
        running = {child.pid: child for child in children}
        while running:
            pid, wait_status = os.wait()
            child = running.pop(pid, None)
            if child is None:
                continue  # not one of ours (an orphan reparented to PID 1)
            child.returncode = os.waitstatus_to_exitcode(wait_status)
            if not state["stopping"]:
                log.error(
                    "worker process %d ended (status %d): stopping the others",
                    pid,
                    child.returncode,
                )
                state["stopping"], state["status"] = True, child.returncode or 1
                for other in running.values():
                    other.send_signal(signal.SIGTERM)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return state["status"]
