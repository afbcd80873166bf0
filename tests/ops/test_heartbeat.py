"""The worker's heartbeat file: one per keycourier instance, so `keycourier worker-health`
never answers for a worker of another checkout or instance on the same machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from app.ops.cli import main
from app.settings import load_settings


def heartbeat_in(directory: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Path:
    """The default heartbeat file of settings read in `directory` with `env`."""
    monkeypatch.chdir(directory)
    return load_settings(env).heartbeat_file


def test_two_checkouts_have_two_heartbeat_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two checkouts on their defaults (SQLite and the embedded broker under their own var/)
    get different files, each the same every time it is asked, in the temporary folder."""
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    mine = heartbeat_in(first, monkeypatch)
    assert mine == heartbeat_in(first, monkeypatch)
    assert mine != heartbeat_in(second, monkeypatch)
    assert mine.parent == Path(tempfile.gettempdir())
    assert mine.name.startswith("keycourier-worker-")


def test_instances_differ_by_ledger_and_broker_not_by_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another database or Redis is another instance; the same ones with another password
    (a rotation) are the same instance, and no password is in the file's name."""
    base = {"DATABASE_URL": "postgresql://kc:one@db.internal/keys", "REDIS_URL": "redis://r:6379/0"}
    mine = heartbeat_in(tmp_path, monkeypatch, **base)
    rotated = {**base, "DATABASE_URL": "postgresql://kc:two@db.internal/keys"}
    assert heartbeat_in(tmp_path, monkeypatch, **rotated) == mine
    for other in (
        {**base, "DATABASE_URL": "postgresql://kc:one@db.internal/other"},
        {**base, "REDIS_URL": "redis://r:6379/1"},
    ):
        assert heartbeat_in(tmp_path, monkeypatch, **other) != mine
    assert "one" not in mine.name


def test_an_explicit_heartbeat_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WORKER_HEARTBEAT_FILE, when set, is the file (the Kubernetes manifests set it)."""
    wanted = tmp_path / "beat"
    assert heartbeat_in(tmp_path, monkeypatch, WORKER_HEARTBEAT_FILE=str(wanted)) == wanted


def test_worker_health_ignores_another_checkouts_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh heartbeat from another checkout's worker does not make this checkout's
    worker-health pass; this checkout's own heartbeat does."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    monkeypatch.delenv("WORKER_HEARTBEAT_FILE", raising=False)
    monkeypatch.setenv("WORKER_PROCESSES", "1")
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    their_file = heartbeat_in(theirs, monkeypatch)
    their_file.touch()
    my_file = heartbeat_in(mine, monkeypatch)
    try:
        my_file.unlink(missing_ok=True)
        assert main(["worker-health"]) == 1
        assert f"no worker heartbeat yet ({my_file} is missing)" in capsys.readouterr().err

        my_file.touch()
        assert main(["worker-health"]) == 0
    finally:
        for path in (my_file, their_file):
            path.unlink(missing_ok=True)
