"""bench/run's own logic, without running a benchmark: it runs the Procfile's lines as they
are, reads CPU over the steady state, fails only on the default column's misses, and its load
generator sends what it is given at its rate."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import shlex
import threading
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import loadgen
from bench.__main__ import configurations
from bench.ingest import IngestResult, Load, slow_callbacks
from bench.pipeline import (
    EndToEndResult,
    Second,
    WorkerResult,
    _at,
    collector_paused,
    sustained_rate,
    timeline,
)
from bench.procs import keycourier, procfile
from bench.report import Report, Run
from tests.conftest import ROOT


def test_the_default_column_runs_the_procfiles_lines_unchanged() -> None:
    """The default configuration's web, worker and beat are the Procfile's lines, split as
    the shell splits them; only the tuned one adds to the worker's."""
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    [(name, default, extra), (tuned_name, tuned, tuned_extra)] = configurations(False)
    assert (name, extra) == ("default", {})
    assert default.web == shlex.split(lines["web"])
    assert default.worker == shlex.split(lines["worker"])
    assert default.beat == shlex.split(lines["beat"])
    assert tuned_name == "tuned"
    assert tuned.worker is not None
    assert tuned.worker[: len(default.worker)] == default.worker
    assert tuned_extra == {"LOG_LEVEL": "WARNING"}


def test_procfile_reading_and_the_installed_command(tmp_path: Path) -> None:
    """Quoted arguments stay one argument; `keycourier` becomes this interpreter's command."""
    path = tmp_path / "Procfile"
    path.write_text(
        "web: keycourier serve --forwarded-allow-ips '*'\n\nworker: keycourier worker\n"
    )
    processes = procfile(path)
    assert processes["web"] == ["keycourier", "serve", "--forwarded-allow-ips", "*"]
    argv = keycourier(processes["worker"])
    assert argv[-1] == "worker"
    assert argv[0] != "keycourier"


def test_cpu_at_a_time_is_read_between_samples() -> None:
    """The CPU used at an arrival time is interpolated between the samples around it, and
    held at the ends."""
    samples = [(10.0, 1.0), (12.0, 3.0), (14.0, 3.5)]
    assert _at(samples, 11.0) == 2.0
    assert _at(samples, 13.0) == 3.25
    assert _at(samples, 9.0) == 1.0
    assert _at(samples, 20.0) == 3.5


def test_the_timeline_gives_each_second_its_events_and_the_cpu_used_in_it() -> None:
    """Events fall in the second they were posted in; a second's CPU is what the samples grew
    by across it, the machine's as a share of its cores; a second the samples do not cover
    yet is left out."""
    # (when, web, worker, machine busy): the worker used 0.5 core in the first second, 1.5
    # in the second; the machine 1 and 2 cores of 2.
    samples = [(100.0, 0.0, 0.0, 0.0), (101.0, 0.1, 0.5, 1.0), (102.0, 0.3, 2.0, 3.0)]
    events = [(100.2, 10.0), (100.9, 30.0), (100.5, 20.0), (101.1, 200.0), (102.5, 5.0)]
    rows = timeline(samples, 100.0, events, cores=2)
    assert [(r.second, r.events, r.p50_ms, r.max_ms) for r in rows] == [
        (0, 3, 20.0, 30.0),
        (1, 1, 200.0, 200.0),
    ]
    assert [round(r.worker_cores, 6) for r in rows] == [0.5, 1.5]
    assert [round(r.web_cores, 6) for r in rows] == [0.1, 0.2]
    assert [r.machine_busy for r in rows] == [0.5, 1.0]


def test_the_sustained_rate_runs_from_the_first_webhook_to_the_last_sms() -> None:
    """Four SMS, the last 2 s after the first webhook: 2/s, whatever order they came in; no
    SMS (or none after the first webhook) gives no rate."""
    assert sustained_rate(100.0, [101.5, 100.5, 102.0, 101.0]) == 2.0
    assert math.isnan(sustained_rate(100.0, []))
    assert math.isnan(sustained_rate(100.0, [99.0]))


def test_the_single_machine_row_says_what_it_sustained() -> None:
    single = EndToEndResult(3000, 2283, 100, 63_300, 126_500, 128_300, 132.0, 193.0, (), 15.2)
    table = Report("abc", "n", default=run("default", 160, 6.0), single_end_to_end=single).table()
    assert "2283/3000 SMS (15/s sustained)" in table


def test_the_stand_ins_process_collects_no_garbage_while_measuring() -> None:
    """The collector is off inside the block (the stand-ins' heap pauses no answer), back on
    after it, and left off when it was off before."""
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def load(rps: float, p99: float) -> Load:
    return Load(int(rps * 10), 10.0, 0, 0, p99 / 2, p99, p99 * 2, 0)


def run(name: str, per_second: float, cpu: float) -> Run:
    return Run(
        name,
        ingest=IngestResult("x", load(10_000, 5), load(4_000, 15), 1.0, 100.0),
        end_to_end=EndToEndResult(100, 100, 100, 10, 30, 40, 100.0, 150.0),
        worker=WorkerResult(1, 1000, per_second, cpu, 150.0),
    )


def test_only_the_default_columns_misses_fail_the_run() -> None:
    """A tuned miss is shown as FAIL but does not fail the run; a default miss does, by
    name."""
    report = Report("abc", "n", default=run("default", 160, 6.0), tuned=run("tuned", 100, 9.0))
    table = report.table()
    assert "FAIL" in table
    assert report.default_failures() == []

    report = Report("abc", "n", default=run("default", 100, 9.0))
    assert "second by second" not in report.table()
    assert report.default_failures() == [
        "worker deliveries/s (one process)",
        "worker CPU per delivery",
    ]


def test_the_table_ends_with_each_runs_timeline() -> None:
    """A run whose end to end has seconds prints one row for each, under its name."""
    default = run("default", 160, 6.0)
    assert default.end_to_end is not None
    default.end_to_end = replace(
        default.end_to_end, seconds=(Second(0, 100, 240.0, 410.0, 1.21, 0.32, 0.97),)
    )
    table = Report("abc", "n", default=default).table()
    assert "end to end second by second (default)" in table
    assert table.splitlines()[-1].split() == [
        "0",
        "100",
        "240",
        "ms",
        "410",
        "ms",
        "1.21",
        "0.32",
        "97%",
    ]


def test_the_load_generator_posts_each_request_once_at_its_rate() -> None:
    """Every pre-signed request arrives once, whole (headers and body), over kept connections,
    and leaves at its time: the n-th at start + n / rate."""
    received: list[tuple[str, str, bytes]] = []
    connections: set[tuple[str, int]] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["svix-id"], body))
            connections.add(self.client_address)
            self.send_response(202 if len(received) % 5 else 503)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/seam"
    payloads = [
        loadgen.encode(url, {"svix-id": f"msg_{n}"}, json.dumps({"n": n}).encode())
        for n in range(40)
    ]
    try:
        sent_at, statuses = asyncio.run(loadgen.run(url, payloads, rate=200))
    finally:
        server.shutdown()
        server.server_close()

    assert sorted(received) == sorted(
        ("/webhooks/seam", f"msg_{n}", json.dumps({"n": n}).encode()) for n in range(40)
    )
    assert statuses.count(503) == 8
    assert statuses.count(202) == 32
    assert len(connections) < 40  # connections were kept and used again
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert min(gaps) > 0
    assert 0.15 < sent_at[-1] - sent_at[0] < 1.0  # 39 gaps of 5 ms


def test_the_load_generator_resends_on_a_connection_the_server_dropped() -> None:
    """A kept connection the server closed without saying so (as uvicorn does to one idle for
    5 s) costs its request nothing: it goes again on a new connection."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append(self.headers["svix-id"])
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = True  # and no "Connection: close" said

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    payloads = [loadgen.encode(url, {"svix-id": f"msg_{n}"}, b"{}") for n in range(10)]
    try:
        _, statuses = asyncio.run(loadgen.run(url, payloads, rate=100))
    finally:
        server.shutdown()
        server.server_close()

    assert statuses == [202] * 10
    assert sorted(received) == sorted(f"msg_{n}" for n in range(10))


def test_slow_callbacks_count_only_while_the_load_ran() -> None:
    """asyncio's slow-callback lines are read from the web process's JSON log; the server's
    start-up and shutdown, outside the load, are told apart, other lines are skipped, and a
    slow callback in a line without a time counts (it cannot be shown to be outside)."""

    def line(at: str, message: str) -> str:
        return json.dumps({"level": "warning", "timestamp": at, "message": message})

    log = "\n".join(
        [
            line("2026-12-06T10:00:00.100Z", "Executing <Task Server.serve()> took 0.004 seconds"),
            "not JSON: a line some library printed",
            "Executing <Handle printed as text> took 0.008 seconds",
            line("2026-12-06T10:00:01.000Z", "Executing <Handle _read_ready> took 0.0032 seconds"),
            line("2026-12-06T10:00:05.000Z", "webhook recorded"),
            line("2026-12-06T10:00:09.000Z", "Executing <Task writer> took 0.012 seconds"),
            line("2026-12-06T10:00:11.000Z", "Executing <Task Lifespan> took 0.006 seconds"),
        ]
    )
    began = datetime(2026, 12, 6, 10, 0, 0, 500_000, tzinfo=UTC)
    ended = datetime(2026, 12, 6, 10, 0, 10, tzinfo=UTC)

    during, outside = slow_callbacks(log, began, ended)

    assert [round(ms, 1) for ms in during] == [8.0, 3.2, 12.0]
    assert [round(ms, 1) for ms in outside] == [4.0, 6.0]
