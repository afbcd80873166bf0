"""Starting the processes a benchmark measures, and reading their memory and CPU."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"


def procfile(path: Path = PROCFILE) -> dict[str, list[str]]:
    """Each Procfile process's command line, split as the shell would: the lines as they are
    shipped, so the benchmark runs what Heroku runs."""
    processes: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = shlex.split(command)
    return processes


def keycourier(argv: Sequence[str]) -> list[str]:
    """A `keycourier ...` command line with the command this interpreter installed (the
    virtualenv's, whatever PATH says)."""
    if argv and argv[0] == "keycourier":
        installed = Path(sys.executable).parent / "keycourier"
        head = [str(installed)] if installed.exists() else [sys.executable, "-m", "app"]
        return [*head, *argv[1:]]
    return list(argv)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


class Proc:
    """A child process (and whatever it starts) with its output in a file; peak RSS and CPU
    read from /proc."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        self.process = subprocess.Popen(
            list(argv),
            cwd=workdir,
            # The repository root, so `python -m bench.*` works from any working directory.
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[int]:
        """This process and its descendants (a `keycourier worker` of several processes)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                todo += [
                    int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                ]
        return found

    def peak_rss_mb(self) -> float:
        """The most memory one process of the tree has held resident (VmHWM), in MB."""
        peaks = [_status_kb(pid, "VmHWM:") / 1024 for pid in self.tree()]
        return max(peaks, default=float("nan"))

    def cpu_seconds(self) -> float:
        """User and system CPU of every live process of the tree."""
        return sum(_cpu_seconds(pid) for pid in self.tree())

    def own_cpu_seconds(self) -> float:
        """User and system CPU of this process alone, without its children."""
        return _cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()


def _cpu_seconds(pid: int) -> float:
    """One live process's user and system CPU (/proc/<pid>/stat), 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_peak_mb(pid: int) -> float:
    """One process's peak RSS (VmHWM), in MB, without its children's."""
    kb = _status_kb(pid, "VmHWM:")
    return kb / 1024 if kb else float("nan")


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_until_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code in (200, 405):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")
