"""How many worker processes `keycourier worker` runs: one per core the machine, dyno or pod
lets it use, read from the control group's CPU quota and memory limit (cgroup v2 and v1) and
the CPUs it may run on; WORKER_PROCESSES wins over all of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.ops.cores import WORKER_PROCESS_MEMORY, Cores, read_cores, worker_processes
from app.settings import load_settings

MiB = 1024 * 1024
AFFINITY = len(os.sched_getaffinity(0))


def cgroup_v2(tmp_path: Path, group: str, files: dict[str, dict[str, str]]) -> Path:
    """A cgroup v2 mount at tmp_path/fs with the process in `group`; `files` maps a group
    path ("" for the mount's root) to the files in it."""
    root = tmp_path / "fs"
    for path, contents in files.items():
        folder = root / path
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            (folder / name).write_text(text + "\n")
    (tmp_path / "cgroup").write_text(f"0::/{group}\n")
    return root


def test_v2_quota_of_two_cores_in_a_pod(tmp_path: Path) -> None:
    """cpu.max "200000 100000" is two cores; memory.max bounds nothing at 2 GiB."""
    limits = {"cpu.max": "200000 100000", "memory.max": str(2048 * MiB)}
    root = cgroup_v2(tmp_path, "", {"": limits})
    cores = read_cores(root, tmp_path / "cgroup")
    assert cores.quota == 2.0
    assert cores.memory_bytes == 2048 * MiB
    assert cores.usable == min(AFFINITY, 2)


def test_v2_no_quota_is_the_cpus_the_process_may_run_on(tmp_path: Path) -> None:
    """cpu.max "max 100000" and memory.max "max" limit nothing: the affinity decides."""
    root = cgroup_v2(tmp_path, "", {"": {"cpu.max": "max 100000", "memory.max": "max"}})
    cores = read_cores(root, tmp_path / "cgroup")
    assert (cores.quota, cores.memory_bytes) == (None, None)
    assert cores.worker_processes() == AFFINITY


def test_v2_a_parents_limit_holds_its_child(tmp_path: Path) -> None:
    """A group under a parent with a smaller quota gets the parent's: the smallest wins, read
    from the process's own group up to the mount."""
    root = cgroup_v2(
        tmp_path,
        "kubepods/pod1/ctr",
        {
            "kubepods/pod1": {"cpu.max": "150000 100000"},
            "kubepods/pod1/ctr": {"cpu.max": "400000 100000"},
        },
    )
    cores = read_cores(root, tmp_path / "cgroup")
    assert cores.quota == 1.5
    assert cores.usable == 1  # one and a half cores keep one process busy, not two


def test_v1_cfs_quota_and_memory_limit(tmp_path: Path) -> None:
    """cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us, memory.limit_in_bytes; the
    controllers mounted together as cpu,cpuacct."""
    root = tmp_path / "fs"
    (root / "cpu,cpuacct").mkdir(parents=True)
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("300000\n")
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    (root / "memory").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text(f"{512 * MiB}\n")
    (tmp_path / "cgroup").write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    cores = read_cores(root, tmp_path / "cgroup")
    assert cores.quota == 3.0
    assert cores.memory_bytes == 512 * MiB
    assert cores.worker_processes() == min(AFFINITY, 3, 512 * MiB // WORKER_PROCESS_MEMORY)


def test_v1_no_limits(tmp_path: Path) -> None:
    """A quota of -1 and v1's huge "no limit" memory value limit nothing."""
    root = tmp_path / "fs"
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (root / "memory").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "cgroup").write_text("5:memory:/\n4:cpu:/\n")
    cores = read_cores(root, tmp_path / "cgroup")
    assert (cores.quota, cores.memory_bytes) == (None, None)


def test_no_cgroup_at_all(tmp_path: Path) -> None:
    """Without /proc/self/cgroup or the mount (not Linux, a locked-down sandbox): the
    affinity alone, never zero."""
    cores = read_cores(tmp_path / "missing", tmp_path / "missing-cgroup")
    assert cores == Cores(affinity=AFFINITY, quota=None, memory_bytes=None)
    assert cores.worker_processes() >= 1


def test_garbage_in_the_files_is_no_limit(tmp_path: Path) -> None:
    """Unreadable values are ignored rather than trusted or raised."""
    root = cgroup_v2(tmp_path, "", {"": {"cpu.max": "lots 100000", "memory.max": "-3"}})
    cores = read_cores(root, tmp_path / "cgroup")
    assert (cores.quota, cores.memory_bytes) == (None, None)


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (Cores(affinity=8, quota=None, memory_bytes=None), 8),
        (Cores(affinity=8, quota=2.0, memory_bytes=None), 2),
        (Cores(affinity=8, quota=0.25, memory_bytes=None), 1),
        (Cores(affinity=2, quota=4.0, memory_bytes=None), 2),
        # A 512 MB dyno that sees 8 shared CPUs: memory, not CPUs, decides.
        (Cores(affinity=8, quota=None, memory_bytes=512 * MiB), 2),
        (Cores(affinity=8, quota=None, memory_bytes=100 * MiB), 1),
    ],
)
def test_one_process_per_usable_core_as_memory_allows(cores: Cores, expected: int) -> None:
    """Whole cores only (a quarter core still runs one), never more than memory holds."""
    assert cores.worker_processes() == expected


def test_worker_processes_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """WORKER_PROCESSES overrides what the machine says; unset, the machine decides."""
    many = Cores(affinity=16, quota=None, memory_bytes=None)
    monkeypatch.setenv("WORKER_PROCESSES", "3")
    assert worker_processes(load_settings(), many) == 3
    monkeypatch.delenv("WORKER_PROCESSES")
    assert worker_processes(load_settings(), many) == 16
