"""`python -m bench`: every benchmark, on this machine, against local stand-ins; one table.

bench/run sets up what this needs (packages, Redis and PostgreSQL, wrk) and runs it. What it
measures is what a user runs: the Procfile's `web`, `worker` and `beat` lines as they are
(read from the Procfile), PostgreSQL and Redis, no LOG_LEVEL (info logs), the README's
defaults; then the tuned column (LOG_LEVEL=WARNING, 64 threads), two worker processes, and
the single-machine defaults (SQLite, embedded broker, `keycourier serve` with its worker).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import psycopg
import redis

from app.ledger.migrate import upgrade
from app.ledger.store import make_engine
from app.standins.seam import SeamStandin
from bench.ingest import run_ingest
from bench.pipeline import Commands, run_end_to_end, run_worker_throughput
from bench.procs import procfile
from bench.report import Report, Run

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PARTS = ["worker", "ingest", "end-to-end", "scaling", "single-machine"]
E2E_RATE = 100.0


@contextmanager
def fresh_postgres() -> Iterator[str]:
    name = f"keycourier_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{url}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_redis() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL


TUNED_LOG_LEVEL = "WARNING"
TUNED_THREADS = 64
FULL_EVENTS = 30_000  # the measurement; --full


def configurations(only_default: bool) -> list[tuple[str, Commands, dict[str, str]]]:
    """(name, command lines, settings) of each column: the Procfile's lines as they are with
    no LOG_LEVEL (info logs), then the tuned run."""
    lines = procfile()
    default = Commands(web=lines["web"], worker=lines["worker"], beat=lines["beat"])
    runs: list[tuple[str, Commands, dict[str, str]]] = [("default", default, {})]
    if not only_default:
        tuned = Commands(
            web=default.web,
            worker=[*lines["worker"], "--concurrency", str(TUNED_THREADS)],
            beat=default.beat,
        )
        runs.append(("tuned", tuned, {"LOG_LEVEL": TUNED_LOG_LEVEL}))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="The defaults a user runs (the Procfile's lines, info logs) beside a tuned "
        "run, each figure beside its target; exits 1 when a default figure misses its target.",
    )
    parser.add_argument(
        "--only", choices=PARTS, action="append", help="run only these (default: all)"
    )
    parser.add_argument("--no-tuned", action="store_true", help="measure the defaults only")
    parser.add_argument(
        "--events",
        type=int,
        default=2000,
        help="queued events a worker drains, an SMS and an email each (default 2000)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help=f"{FULL_EVENTS:,} events for the worker, as issue 18 measured (~12 min more)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    parser.add_argument(
        "--e2e-seconds",
        type=int,
        default=30,
        help="seconds of webhooks at 100 events/s end to end (default 30)",
    )
    parser.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a default figure misses its target"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()  # fmt: skip
    wanted = set(args.only or PARTS)
    events = FULL_EVENTS if args.full else args.events
    # What a user gets: no LOG_LEVEL, and as many worker processes as the machine says.
    for name in ("LOG_LEVEL", "WORKER_PROCESSES", "DATABASE_POOL_SIZE"):
        os.environ.pop(name, None)
    runs = configurations(args.no_tuned)
    numbers = (
        f"worker: {events:,} events ({2 * events:,} deliveries); end to end: "
        f"{E2E_RATE:.0f} events/s for {args.e2e_seconds} s; ingest: wrk {args.seconds} s, "
        f"64 connections"
    )
    report = Report(commit=_commit(), numbers=numbers, default=Run("default"))
    with tempfile.TemporaryDirectory(prefix="keycourier-bench-") as tmp:
        workdir = Path(tmp)
        for name, commands, extra in runs:
            run = report.default if name == "default" else Run(name)
            if name != "default":
                report.tuned = run
            _progress(f"{name}: ...")
            if "worker" in wanted:
                with fresh_postgres() as database_url:
                    run.worker = run_worker_throughput(
                        {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis(), **extra},
                        workdir / f"{name}-worker", commands, processes=1, events=events,
                    )  # fmt: skip
                _progress(f"{name}: worker {run.worker}")
            if "ingest" in wanted:
                with fresh_postgres() as database_url:
                    env = {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis(), **extra}
                    run.ingest = run_ingest(
                        "PostgreSQL + Redis", env, workdir / f"{name}-ingest", commands.web,
                        seconds=args.seconds, measure_blocks=name == "default",
                    )  # fmt: skip
                _progress(f"{name}: ingest {run.ingest.ratio:.0%}")
            if "end-to-end" in wanted:
                with fresh_postgres() as database_url:
                    run.end_to_end = run_end_to_end(
                        {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis(), **extra},
                        workdir / f"{name}-end-to-end", commands,
                        rate=E2E_RATE, seconds=args.e2e_seconds,
                    )  # fmt: skip
                e = run.end_to_end
                _progress(
                    f"{name}: end to end {e.received}/{e.events}, p50 {e.p50_ms:.0f} ms, "
                    f"p99 {e.p99_ms:.0f} ms"
                )
        default = runs[0][1]
        if "scaling" in wanted:
            with fresh_postgres() as database_url:
                report.two_workers = run_worker_throughput(
                    {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis()},
                    workdir / "two-workers", default, processes=2, events=events,
                )  # fmt: skip
            _progress(f"two workers: {report.two_workers}")
        if "single-machine" in wanted:
            single = workdir / "single"
            single.mkdir()
            with SeamStandin() as seam:
                env = {
                    "DATABASE_URL": f"sqlite:///{single / 'ledger.db'}",
                    "SEAM_API_KEY": seam.api_key,
                    "SEAM_ENDPOINT": seam.url,
                    "WORKER_HEARTBEAT_FILE": str(single / "worker-heartbeat"),
                }
                report.single_ingest = run_ingest(
                    "single machine", env, single / "ingest", default.web, seconds=args.seconds
                )
            _progress("single machine: ingest done")
            report.single_end_to_end = run_end_to_end(
                {"DATABASE_URL": f"sqlite:///{single / 'e2e.db'}"},
                single / "end-to-end", Commands(web=default.web),
                rate=E2E_RATE, seconds=args.e2e_seconds,
            )  # fmt: skip
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str))
    failures = report.default_failures()
    if failures and not args.no_fail:
        print(f"\n{len(failures)} default figure(s) missed the target (--no-fail: exit 0 anyway)")
        return 1
    return 0


def _progress(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
