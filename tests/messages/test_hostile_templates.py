"""Templates written to exhaust memory: `keycourier templates check`, a real process, refuses
each before it allocates, and stays small while doing so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from app.messages.live import LiveTemplates
from app.messages.properties import Audience
from app.messages.variables import sample_context

SHIPPED = Path(__file__).resolve().parents[2] / "templates"
ROOT = Path(__file__).resolve().parents[2]
# Peak RSS a refused check may reach: the interpreter and its imports take about 80 MB.
MAX_PEAK_MB = 300
# The child's address space: a check that does allocate fails there instead of taking the
# machine (and so fails this test on its peak, not by exhausting the host).
CHILD_ADDRESS_SPACE = 2 * 1024**3
BIG = "{% set x = 'a' * 30000 %}"
HUGE = "{% set x = 'a' * 90000 %}"
HOSTILE = {
    "replace method": BIG + "{{ x.replace('a', x)|length }}",
    "replace filter": BIG + "{{ x|replace('a', x)|length }}",
    "expandtabs": "{% set x = '\\t' * 90000 %}{{ x.expandtabs(10000)|length }}",
    "join method": BIG + "{{ x.join(x)|length }}",
    "join a repeated list": BIG + "{{ ([x] * 30000)|join|length }}",
    "format": BIG + "{{ ('{0}' * 30000).format(x)|length }}",
    "printf": BIG + "{{ (('%s' * 30000) % ((x,) * 30000))|length }}",
    "printf by name": BIG + "{{ (('%(a)s' * 15000) % {'a': x})|length }}",
    "translate": BIG + "{{ x.translate({97: x})|length }}",
    "indent by a number": "{% set x = 'a\\n' * 40000 %}{{ x|indent(10000)|length }}",
    "indent by a text": "{% set x = 'a\\n' * 40000 %}{{ x|indent('b' * 50000)|length }}",
    "wordwrap": "{% set x = 'a ' * 40000 %}{{ x|wordwrap(1, wrapstring='b' * 50000)|length }}",
    "a list repeated then joined": BIG + "{{ ([x, x] * 20000)|join('-')|length }}",
    "concatenated in a set block": HUGE + "{% set y %}{% for i in range(500) %}"
    "{% for j in range(30) %}{{ x }}{% endfor %}{% endfor %}{% endset %}{{ y|length }}",
    "a macro's output": HUGE + "{% macro m() %}{% for i in range(500) %}{% for j in range(30) %}"
    "{{ x }}{% endfor %}{% endfor %}{% endmacro %}{{ m()|length }}",
    "a namespace printed": BIG + "{% set ns = namespace(l=[x, x, x, x, x, x, x, x, x, x]) %}"
    "{% set ns.l = ns.l * 3000 %}{{ ns|length }}",
}


# Runs a command under a memory limit and writes its peak RSS (kB) to a file. The check runs as
# this small process's child, not pytest's: a child forked from a process keeps that process's
# peak RSS as its own floor (Linux carries ru_maxrss across exec), and pytest's grows with the
# run; this one's stays small.
MEASURE = """
import os, resource, subprocess, sys
report, limit, *command = sys.argv[1:]
def limited():
    resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
child = subprocess.Popen(command, preexec_fn=limited)
_, status, usage = os.wait4(child.pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def check_folder(folder: Path) -> tuple[int, str, float, float]:
    """Run `keycourier templates check --dir folder`: exit code, output, seconds, peak RSS MB."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEMPLATES")}
    report = folder.parent / f"{folder.name}.maxrss"
    command = [sys.executable, "-m", "app", "templates", "check", "--dir", str(folder)]
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-c", MEASURE, str(report), str(CHILD_ADDRESS_SPACE), *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    return process.returncode, process.stdout.decode(), elapsed, int(report.read_text()) / 1024


@pytest.mark.parametrize("source", list(HOSTILE.values()), ids=list(HOSTILE))
def test_check_refuses_a_memory_bomb_quickly_and_small(tmp_path: Path, source: str) -> None:
    """Each template built to allocate gigabytes is refused by the check with a reason naming
    its file, within seconds, while the check's peak RSS stays under 300 MB."""
    folder = Path(shutil.copytree(SHIPPED, tmp_path / "templates"))
    (folder / "pin_code" / "en" / "sms.txt").write_text(
        "{{ pin_code }} " + source, encoding="utf-8"
    )
    code, output, seconds, peak_mb = check_folder(folder)
    refusals = [line for line in output.splitlines() if line.startswith("pin_code/en/sms.txt")]
    assert code == 1, output
    assert refusals, output
    assert all("not allowed in a template" in line for line in refusals), output
    assert "MemoryError" not in output
    assert seconds < 15, f"took {seconds:.1f} s"
    assert peak_mb < MAX_PEAK_MB, f"peak RSS {peak_mb:.0f} MB"


def test_hot_reload_refuses_a_memory_bomb_and_keeps_the_last_good_version(tmp_path: Path) -> None:
    """An edit to a running process's templates that would allocate gigabytes is refused by the
    reload's check before it allocates (Python's allocations stay under 50 MB meanwhile), and
    the last good version keeps serving."""
    folder = Path(shutil.copytree(SHIPPED, tmp_path / "templates"))
    live = LiveTemplates(folder, reload_seconds=0)
    context = sample_context("pin_code", Audience("en", "UTC"))
    good = live.render_sms("pin_code", context)
    (folder / "pin_code" / "en" / "sms.txt").write_text(
        "{{ pin_code }} " + HOSTILE["replace method"], encoding="utf-8"
    )
    tracemalloc.start()
    try:
        live.refresh(force=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    status = live.status()
    assert status["status"] == "degraded"
    assert status["serving"] == "last good version"
    assert any("replace" in problem for problem in status["problems"])  # type: ignore[attr-defined]
    assert peak < 50 * 1024**2, f"peak {peak / 1024**2:.0f} MB"
    assert live.render_sms("pin_code", context) == good


def test_check_of_the_shipped_templates_stays_small(tmp_path: Path) -> None:
    """The shipped templates still pass the check, within the same memory, so the limits
    refuse only what is built to be too big."""
    folder = Path(shutil.copytree(SHIPPED, tmp_path / "templates"))
    code, output, _, peak_mb = check_folder(folder)
    assert code == 0, output
    assert peak_mb < MAX_PEAK_MB
