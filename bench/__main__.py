"""`python -m bench`: every benchmark, on this machine, against local stand-ins; one table.

bench/run sets up what this needs (packages, Redis and PostgreSQL, wrk) and runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import psycopg
import redis

from app.ledger.migrate import upgrade
from app.ledger.store import make_engine
from bench.ingest import run_ingest
from bench.pipeline import run_end_to_end, run_worker_throughput
from bench.report import Report

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


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


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument(
        "--only", choices=["ingest", "end-to-end", "worker"], action="append",
        help="run only these (default: all)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    wanted = set(args.only or ["ingest", "end-to-end", "worker"])
    report = Report(commit=_commit())

    with tempfile.TemporaryDirectory(prefix="keycourier-bench-") as tmp:
        workdir = Path(tmp)
        if "ingest" in wanted:
            with fresh_postgres() as database_url:
                env = {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis()}
                report.ingest.append(
                    run_ingest(
                        "PostgreSQL + Redis",
                        env,
                        workdir / "ingest-pg",
                        seconds=args.seconds,
                        measure_blocks=True,
                    )
                )
            embedded = {"DATABASE_URL": f"sqlite:///{workdir / 'ingest-embedded' / 'ledger.db'}"}
            report.ingest.append(
                run_ingest("embedded (SQLite)", embedded, workdir / "ingest-embedded",
                           seconds=args.seconds)
            )  # fmt: skip
        if "end-to-end" in wanted:
            with fresh_postgres() as database_url:
                report.end_to_end = run_end_to_end(
                    {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis()},
                    workdir / "end-to-end",
                )
            # Below one worker's capacity: the pipeline's own latency, without a backlog.
            with fresh_postgres() as database_url:
                report.end_to_end_unsaturated = run_end_to_end(
                    {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis()},
                    workdir / "end-to-end-50",
                    rate=50,
                    seconds=30,
                )
        if "worker" in wanted:
            with fresh_postgres() as database_url:
                report.worker = run_worker_throughput(
                    {"DATABASE_URL": database_url, "REDIS_URL": fresh_redis()},
                    workdir / "worker",
                )
    print(report.table())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str))
    return 0 if report.all_pass() else 1


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
