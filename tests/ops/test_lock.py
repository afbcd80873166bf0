"""The lock files agree with pyproject.toml and with each other, and every install uses them:
the Dockerfile and scripts/bootstrap (hashes checked), Heroku's requirements.txt (the same
pins). scripts/lock writes all three files; these tests fail when one was edited by hand or
pyproject.toml changed without re-locking.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from typing import NamedTuple

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = "requirements.lock"
DEV = "requirements-dev.lock"
# What each lock holds: keycourier's dependencies plus these extras.
EXTRAS = {RUNTIME: ("sentry",), DEV: ("sentry", "test")}


class Pin(NamedTuple):
    name: str
    version: Version
    marker: str | None
    hashes: int


def pins(file: str) -> list[Pin]:
    """`name==version [; marker]` entries, each with the `--hash` lines that follow it."""
    text = (ROOT / file).read_text()
    found = []
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = entry.split("\n", 1)[0]
        if first.startswith(("#", "-", ".")) or "==" not in first:
            continue
        requirement = Requirement(first.rstrip(" \\"))
        [spec] = requirement.specifier
        assert spec.operator == "==", first
        found.append(
            Pin(
                canonicalize_name(requirement.name),
                Version(spec.version),
                str(requirement.marker) if requirement.marker else None,
                entry.count("--hash=sha256:"),
            )
        )
    assert found, f"{file} locks nothing"
    return found


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    """The requirements pyproject.toml names: the dependencies and those of the extras."""
    project = PYPROJECT["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(name) for name in names]


@pytest.mark.parametrize("lock", [RUNTIME, DEV])
def test_lock_covers_every_dependency_in_pyproject(lock: str) -> None:
    """Each dependency pyproject.toml names (and its extras' own, like uvicorn[standard]'s
    uvloop) is locked at a version its specifier allows, and every pin carries hashes."""
    locked = pins(lock)
    versions: dict[str, list[Version]] = {}
    for pin in locked:
        assert pin.hashes, f"{pin.name} has no hash in {lock}"
        versions.setdefault(pin.name, []).append(pin.version)
    for requirement in declared(EXTRAS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{requirement} is not in {lock}: run scripts/lock"
        allowed = [v for v in versions[name] if requirement.specifier.contains(v, prereleases=True)]
        assert allowed, f"{lock} pins {name} {versions[name]}, outside {requirement.specifier}"
        for extra in requirement.extras:
            # What the extra brings, read from the installed package's metadata.
            for needed in map(Requirement, metadata.requires(requirement.name) or []):
                if needed.marker and needed.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(needed.name) in versions, (
                        f"{requirement.name}[{extra}] needs {needed.name}, not in {lock}"
                    )


def test_dev_lock_holds_the_runtime_versions() -> None:
    """Tests run against the versions the image ships: every package of the runtime lock is
    in the dev lock at the same version, under the same condition or none (a test tool may
    need on every platform what the runtime needs on one: tzdata)."""
    dev = {(p.name, p.version): p.marker for p in pins(DEV)}
    missing = [
        (p.name, p.version, p.marker)
        for p in pins(RUNTIME)
        if (p.name, p.version) not in dev or dev[(p.name, p.version)] not in (p.marker, None)
    ]
    assert missing == []
    assert {p.name for p in pins(DEV)} > {p.name for p in pins(RUNTIME)}


def test_this_environment_matches_the_dev_lock() -> None:
    """scripts/bootstrap installed exactly what the dev lock says (a stale .venv, or a lock
    edited without re-installing, shows here)."""
    for pin in pins(DEV):
        if pin.marker and not Marker(pin.marker).evaluate():
            continue
        assert Version(metadata.version(pin.name)) == pin.version, pin.name


def test_requirements_txt_installs_the_runtime_lock() -> None:
    """Heroku installs requirements.txt: the runtime lock's pins (pip cannot check a hash for
    `.`, so it has none) and then keycourier itself with Sentry support."""
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[-1] == ".[sentry]"
    heroku = {
        (canonicalize_name(r.name), str(r.specifier), str(r.marker) if r.marker else None)
        for r in map(Requirement, lines[:-1])
    }
    locked = {(p.name, f"=={p.version}", p.marker) for p in pins(RUNTIME)}
    assert heroku == locked


def test_installs_use_the_lock() -> None:
    """The image installs the runtime lock with its hashes, in a layer of its own before the
    code is copied, then keycourier without dependencies; scripts/bootstrap installs the dev
    lock the same way and re-installs when the lock changes."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    lock_install = dockerfile.index("--require-hashes -r requirements.lock")
    assert dockerfile.index("COPY requirements.lock") < lock_install
    assert lock_install < dockerfile.index("COPY app ") < dockerfile.index("--no-deps .")
    assert not re.search(r"pip install .*\.\[", dockerfile)

    bootstrap = (ROOT / "scripts" / "bootstrap").read_text()
    assert f"--require-hashes -r {DEV}" in bootstrap
    assert "--no-deps -e ." in bootstrap
    [stamp] = re.findall(r"^wanted=(.*)$", bootstrap, flags=re.MULTILINE)
    assert "pyproject.toml" in stamp
    assert DEV in stamp


def test_python_version_is_the_image_s() -> None:
    """.python-version (Heroku's buildpack reads it) names the image's Python, which
    pyproject.toml allows and the lock was resolved for (3.11 onwards)."""
    pinned = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", pinned)
    dockerfile = (ROOT / "Dockerfile").read_text()
    images = set(re.findall(r"^FROM python:(\d+\.\d+)-slim", dockerfile, flags=re.MULTILINE))
    assert images == {pinned}
    requires = PYPROJECT["project"]["requires-python"]
    assert Requirement(f"python{requires}").specifier.contains(f"{pinned}.0")
    lock_script = (ROOT / "scripts" / "lock").read_text()
    [floor] = re.findall(r"--python-version (\S+)", lock_script)
    assert requires == f">={floor}"
