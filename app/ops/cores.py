"""How many worker processes this machine, dyno or pod has room for.

One worker process is one core's worth of work (its threads share one interpreter lock: see
docs/scaling.md), so `keycourier worker` runs one process per core it may use. The cores it
may use are the fewest of:
- the CPUs the process may run on (`os.sched_getaffinity`: a cpuset, `taskset`);
- the CPU quota of its control group, rounded down (a Kubernetes CPU limit, `docker --cpus`):
  cgroup v2's `cpu.max` (`QUOTA PERIOD`, or `max`) or cgroup v1's `cpu.cfs_quota_us` over
  `cpu.cfs_period_us` (-1: none). Every level from the process's group up to the mount's root
  is read and the smallest quota wins: a parent's limit holds its children too;
- the memory limit of its control group (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`)
  over what one worker process may use (WORKER_PROCESS_MEMORY): a small dyno with many
  visible CPUs must not be given more processes than its memory holds.
WORKER_PROCESSES, when set, is the answer instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
# A worker process peaks under 200 MB (bench/run's target); 256 MiB leaves room to spare.
WORKER_PROCESS_MEMORY = 256 * 1024 * 1024
# cgroup v1 writes "no limit" as a huge number (the largest page-aligned 64-bit value).
V1_NO_MEMORY_LIMIT = 1 << 60


@dataclass(frozen=True)
class Cores:
    """What the limits say, each None when there is none."""

    affinity: int
    quota: float | None
    memory_bytes: int | None

    @property
    def usable(self) -> int:
        """Whole cores this process may keep busy: at least one."""
        cores = self.affinity if self.quota is None else min(self.affinity, int(self.quota))
        return max(1, cores)

    def worker_processes(self) -> int:
        if self.memory_bytes is None:
            return self.usable
        return max(1, min(self.usable, self.memory_bytes // WORKER_PROCESS_MEMORY))


def read_cores(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> Cores:
    groups = _groups(proc_cgroup)
    return Cores(
        affinity=_affinity(),
        quota=_smallest(
            [_v2_quota(d) for d in _dirs(root, groups.get(""))]
            + [_v1_quota(d) for d in _v1_dirs(root, groups, "cpu")]
        ),
        memory_bytes=_smallest_int(
            [_v2_memory(d) for d in _dirs(root, groups.get(""))]
            + [_v1_memory(d) for d in _v1_dirs(root, groups, "memory")]
        ),
    )


def worker_processes(settings: Settings, cores: Cores | None = None) -> int:
    """WORKER_PROCESSES, else one per usable core (as memory allows)."""
    if settings.worker_processes is not None:
        return settings.worker_processes
    return (cores or read_cores()).worker_processes()


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _groups(proc_cgroup: Path) -> dict[str, str]:
    """Controller -> the process's group path; "" is cgroup v2's unified hierarchy.
    A v1 line names several controllers at once (`4:cpu,cpuacct:/kubepods/...`)."""
    try:
        text = proc_cgroup.read_text()
    except OSError:
        return {}
    groups: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1], parts[2]
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _dirs(mount: Path, group: str | None) -> list[Path]:
    """The group's folder and each parent up to the mount's root, those that exist. Inside a
    container the mount's root is often the container's own group (a cgroup namespace or a
    bind mount) while /proc/self/cgroup names the host's path: the root is always read."""
    if group is None:
        return []
    found = [mount]
    relative = Path(group.lstrip("/"))
    for depth in range(1, len(relative.parts) + 1):
        candidate = mount.joinpath(*relative.parts[:depth])
        if candidate.is_dir():
            found.append(candidate)
    return found


def _v1_dirs(root: Path, groups: dict[str, str], controller: str) -> list[Path]:
    if controller not in groups:
        return []
    for name in (f"{controller},cpuacct", f"cpuacct,{controller}", controller):
        if (root / name).is_dir():
            return _dirs(root / name, groups[controller])
    return []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _v2_quota(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    if not text:
        return None
    fields = text.split()
    if fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        q, p = int(quota or ""), int(period or "")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _v2_memory(folder: Path) -> int | None:
    text = _read(folder / "memory.max")
    return int(text) if text and text.isdigit() else None


def _v1_memory(folder: Path) -> int | None:
    text = _read(folder / "memory.limit_in_bytes")
    if not text or not text.isdigit():
        return None
    value = int(text)
    return value if value < V1_NO_MEMORY_LIMIT else None


def _smallest(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _smallest_int(values: list[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def describe(cores: Cores) -> str:
    """One line for the worker's start-up log: what it found."""
    quota = "none" if cores.quota is None else f"{cores.quota:g}"
    memory = "none" if cores.memory_bytes is None else f"{cores.memory_bytes // 2**20} MiB"
    return f"{cores.affinity} CPUs, CPU quota {quota}, memory limit {memory}"
