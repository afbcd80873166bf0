"""Ingest: POST /webhooks/seam doing its real work, against a bare Starlette endpoint.

Both are served by the same uvicorn set-up and loaded by wrk with the same pre-signed,
distinct events at the same concurrency, one after the other in the same run, so the ratio
between them holds on a noisy machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from app.ops.demo import free_port
from app.standins.seam import SAMPLES
from app.standins.signing import signed_headers
from bench.procs import Proc, keycourier, own_peak_mb, python, wait_until_ready

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
WRK_THREADS = 1  # the other core is the server's


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    wrapped: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Blocks:
    """Event-loop callbacks that held the loop over SLOW_CALLBACK_MS, from asyncio's debug
    mode, under the same load (debug mode slows callbacks: these are upper bounds). Only those
    logged while the load ran count: the server's start-up and shutdown, before the first
    request and after the last, delay none (`outside_load` says how many there were)."""

    threshold_ms: float
    count: int
    longest_ms: float  # 0 when none was over the threshold
    requests: int
    outside_load: int = 0


@dataclass(frozen=True)
class IngestResult:
    label: str
    bare: Load
    keycourier: Load
    loop_lag_max_ms: float
    web_peak_rss_mb: float
    blocks: Blocks | None = None

    @property
    def ratio(self) -> float:
        return self.keycourier.rps / self.bare.rps


def write_requests(path: Path, count: int) -> None:
    """`count` distinct events, each signed now, one per line for bench/replay.lua:
    svix-id, svix-timestamp, svix-signature and the body, tab-separated. (A Lua table literal
    stops at 65,536 constants in one chunk: LuaJIT refuses a file of 100,000 events.)"""
    template = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
    now = datetime.now(UTC)
    with path.open("w") as out:
        for _ in range(count):
            event_id = str(uuid.uuid4())
            body = json.dumps({**template, "event_id": event_id})
            headers = signed_headers(SECRET, body.encode(), msg_id=f"msg_{event_id}", timestamp=now)
            fields = (headers["svix-id"], headers["svix-timestamp"], headers["svix-signature"])
            out.write("\t".join((*fields, body)) + "\n")


def wrk(url: str, requests_file: Path, connections: int, seconds: int) -> Load:
    script = Path(__file__).with_name("replay.lua")
    result = subprocess.run(
        [
            "wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
            "-s", str(script), url,
        ],
        env={
            **os.environ,
            "BENCH_REQUESTS": str(requests_file),
            "BENCH_THREADS": str(WRK_THREADS),
        },
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return Load(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        non_2xx=summary["non_2xx"],
        socket_errors=summary["socket_errors"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        wrapped=summary["wrapped"],
    )


def run_ingest(
    label: str,
    env: dict[str, str],
    workdir: Path,
    web: list[str],
    *,
    connections: int = 64,
    seconds: int = 10,
    # More than the web process takes in `seconds` (103,000 in 10 s on a quiet day here): a
    # request sent twice would be a duplicate, not the new event it stands for.
    distinct_events: int = 250_000,
    measure_blocks: bool = False,
) -> IngestResult:
    workdir.mkdir(parents=True, exist_ok=True)
    requests_file = workdir / "requests.tsv"
    write_requests(requests_file, distinct_events)

    port = free_port()
    bare = Proc("bare", python("-m", "bench.bare", "--port", str(port)), env, workdir)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/webhooks/seam")
        bare_load = wrk(
            f"http://127.0.0.1:{port}/webhooks/seam", requests_file, connections, seconds
        )
    finally:
        bare.stop()

    # Signed a few seconds ago; still well inside Svix's 5-minute tolerance.
    port = free_port()
    # The web process loads the templates too (it reports them on /readyz): as in production.
    web_env = {
        **env,
        "SEAM_WEBHOOK_SECRET": SECRET,
        "PORT": str(port),
        "TEMPLATES_DIR": str(TEMPLATES),
    }
    web_proc = Proc("web", keycourier(web), web_env, workdir)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz")
        httpx.get(f"http://127.0.0.1:{port}/healthz").json()  # resets the recent lag
        load = wrk(f"http://127.0.0.1:{port}/webhooks/seam", requests_file, connections, seconds)
        lag = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["event_loop_lag"]
        rss = own_peak_mb(web_proc.pid)  # not the embedded worker's, in single-machine mode
    finally:
        web_proc.stop()
    blocks = None
    if measure_blocks:
        blocks = _blocks(web_env, workdir, web, connections, seconds)
    return IngestResult(label, bare_load, load, lag["recent_max_ms"], rss, blocks)


SLOW_CALLBACK_MS = 3.0
_TOOK = re.compile(r"Executing .*? took (\d+\.\d+) seconds")


def _blocks(
    web_env: dict[str, str], workdir: Path, web: list[str], connections: int, seconds: int
) -> Blocks:
    """The same load on a web process in asyncio's debug mode (SLOW_CALLBACK_MS set), which
    logs every callback that held the loop longer than that: how many, and the longest."""
    requests_file = workdir / "requests-debug.tsv"
    write_requests(requests_file, 50_000)  # new events: the first run recorded the others
    port = free_port()
    debug_env = {
        **web_env,
        "PORT": str(port),
        "SLOW_CALLBACK_MS": str(SLOW_CALLBACK_MS),
    }
    debug = Proc("web-debug", keycourier(web), debug_env, workdir)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz")
        began = datetime.now(UTC)
        load = wrk(f"http://127.0.0.1:{port}/webhooks/seam", requests_file, connections, seconds)
        ended = datetime.now(UTC)
    finally:
        debug.stop()
    during, outside = slow_callbacks(debug.log.read_text(errors="replace"), began, ended)
    return Blocks(
        SLOW_CALLBACK_MS, len(during), max(during, default=0.0), load.requests, len(outside)
    )


def slow_callbacks(log: str, began: datetime, ended: datetime) -> tuple[list[float], list[float]]:
    """How long each slow callback the log names took (ms): those logged while the load ran,
    and those before or after it. A line that is not a JSON record with a time counts as
    during the load: it cannot be shown to be outside it."""
    during: list[float] = []
    outside: list[float] = []
    for line in log.splitlines():
        took = _TOOK.search(line)
        if took is None:
            continue
        ms = float(took.group(1)) * 1000
        try:
            record = json.loads(line)
            at = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
        except (ValueError, TypeError, KeyError):
            during.append(ms)
            continue
        (during if began <= at <= ended else outside).append(ms)
    return during, outside
