"""The `keycourier` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta

from app.errors import KeycourierError, LedgerNotReady
from app.ops import commands as ops_commands
from app.ops.failures import explain
from app.ops.templates_cli import add_template_commands
from app.settings import load_settings

WORKER_THREADS = 32

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except KeycourierError as exc:
        # One line saying what is wrong and what to do (app/ops/failures.py), not a traceback.
        explained = explain(exc)
        if explained is None:
            raise
        line, status = explained
        print(f"keycourier: {line}", file=sys.stderr)
        return status
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keycourier", description="Deliver Seam access credentials to guests."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the web process (and, with the embedded broker, a worker beside it)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $PORT, else 8000)")
    serve.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies whose X-Forwarded-* headers are trusted ('*' behind Heroku's router or "
        "an ingress; default 127.0.0.1)",
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start the embedded worker even without REDIS_URL",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", type=int, default=WORKER_THREADS)
    worker.add_argument(
        "--beat", action="store_true", help="also run beat (the sweeper) in this worker"
    )
    worker.set_defaults(run=_worker)

    beat = commands.add_parser("beat", help="run Celery beat: the sweeper and reconcile, on time")
    beat.set_defaults(run=_beat)

    reconcile = commands.add_parser(
        "reconcile", help="process Seam events the webhook missed (from Seam's events/list)"
    )
    reconcile.add_argument(
        "--since", type=parse_duration, default=parse_duration("24h"),
        help="how far back to look, e.g. 24h, 90m, 2d (default 24h)",
    )  # fmt: skip
    reconcile.set_defaults(run=_reconcile)

    sweep = commands.add_parser("sweep", help="re-queue work the ledger says is stuck, once")
    sweep.set_defaults(run=_sweep)

    migrate = commands.add_parser("migrate", help="apply the ledger's database migrations")
    migrate.set_defaults(run=_migrate)

    deliveries = commands.add_parser("deliveries", help="list recent deliveries")
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.set_defaults(run=_deliveries)

    ops_user = commands.add_parser(
        "ops-user", help="make an OPS_USERS entry (name:hash) for someone to sign in to /ops"
    )
    ops_user.add_argument("name", help="the name they sign in with")
    ops_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of asking for it twice",
    )
    ops_user.set_defaults(run=_ops_user)

    add_template_commands(commands)
    ops_commands.add_commands(commands)

    demo = commands.add_parser("demo", help="the whole path on this machine, no accounts needed")
    demo.add_argument("--port", type=int, default=0, help="web port (default: a free one)")
    demo.set_defaults(run=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.intake.queue import CeleryEnqueuer, Enqueuer
    from app.ledger.store import Ledger
    from app.observability.error_reports import init_error_reports
    from app.observability.logs import configure_logging
    from app.observability.startup import log_summary
    from app.web.limits import server_options
    from app.web.main import create_app

    settings = load_settings(require=("SEAM_WEBHOOK_SECRET",))
    configure_logging(settings)
    init_error_reports(settings)
    port = args.port or settings.port
    shown_host = "localhost" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    log_summary(settings, "web", f"http://{shown_host}:{port}")
    # The event loop shares the GIL with the ingest writer thread: hand it over every 1 ms
    # instead of every 5, so a request never waits long behind the writer's Python.
    sys.setswitchinterval(0.001)
    ledger = Ledger.from_url(settings.database_url, status_webhooks=settings.status_webhooks)
    if settings.database_url.startswith("sqlite"):
        # Single-machine mode has no release phase: bring the SQLite ledger up to date here.
        # (Alembic loads only then: ~8 MB a PostgreSQL web process does without.)
        from app.ledger.migrate import upgrade

        upgrade(ledger.engine)
    # uvicorn re-raises the SIGTERM it stopped on once it is done; Python's default action for
    # it kills the process before `finally` runs, which would orphan the embedded worker.
    signal.signal(signal.SIGTERM, _exit_quietly)
    # With REDIS_URL the web process pushes to Redis itself (create_app's default); the embedded
    # broker is published to through the workers' Celery app.
    enqueuer: Enqueuer | None = None
    if settings.embedded_broker:
        from workers.celery_app import create_celery_app

        enqueuer = CeleryEnqueuer(create_celery_app(settings))
    worker = None
    if settings.embedded_broker and not args.no_worker:
        settings.require("SEAM_API_KEY")
        # Single-machine mode: the worker runs beat (sweeper, reconcile) inside it too.
        worker = subprocess.Popen(  # noqa: S603 - our own command line
            worker_command(WORKER_THREADS // 2, settings.log_level, with_beat=True)
        )
    try:
        uvicorn.run(
            create_app(settings, ledger=ledger, enqueuer=enqueuer),
            host=args.host,
            port=port,
            proxy_headers=True,
            forwarded_allow_ips=args.forwarded_allow_ips,
            log_config=None,
            # One line per request at webhook rates is noise and CPU; refusals and failures
            # are logged by the endpoint itself.
            access_log=False,
            **server_options(settings),  # head size, read timeouts, keep-alive, connections
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
    return 0


def _exit_quietly(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def worker_command(concurrency: int, log_level: str, *, with_beat: bool = False) -> list[str]:
    # Threads: a worker spends its time waiting on Seam, Twilio and SendGrid, not computing.
    # Celery's --loglevel sets the root logger's level too: it must be LOG_LEVEL's.
    return [
        # --quiet: no start-up banner, so every line the worker writes is a JSON log line.
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "--quiet", "worker",
        "--pool", "threads", "--concurrency", str(concurrency), "--loglevel", log_level.upper(),
        "--without-gossip", "--without-mingle", *(["--beat"] if with_beat else []),
    ]  # fmt: skip


def _worker(args: argparse.Namespace) -> int:
    from app.ops.cores import describe, read_cores, worker_processes
    from app.ops.supervise import process_env, run_processes

    settings = load_settings(require=("SEAM_API_KEY",))  # fail here, in one line, not in Celery
    # One database connection per worker thread, and a few for beat and the sweeper.
    os.environ.setdefault("DATABASE_POOL_SIZE", str(args.concurrency + 4))
    cores = read_cores()
    processes = worker_processes(settings, cores)
    if processes == 1:
        command = worker_command(args.concurrency, settings.log_level, with_beat=args.beat)
        os.execv(command[0], command)  # noqa: S606 - replaces this process, signals go straight to Celery
    from app.observability.logs import configure_logging

    configure_logging(settings)
    how = "WORKER_PROCESSES" if settings.worker_processes else describe(cores)
    log.info("starting %d worker processes (%s)", processes, how)
    # Beat, when asked for, runs in the first process only: it must run once.
    commands = [
        (
            worker_command(args.concurrency, settings.log_level, with_beat=args.beat and n == 0),
            process_env(n, processes, settings.heartbeat_file, settings.worker_metrics_port),
        )
        for n in range(processes)
    ]
    return run_processes(commands)


def _beat(args: argparse.Namespace) -> int:
    load_settings(require=("SEAM_API_KEY",))
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat", "-l", "INFO"]
    os.execv(command[0], command)  # noqa: S606 - replaces this process


def parse_duration(text: str) -> timedelta:
    """24h, 90m, 2d, 3600s (or a bare number of seconds) as a timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 24h") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return timedelta(seconds=value * units[unit])


def _reconcile(args: argparse.Namespace) -> int:
    from app.adapters.build import seam_readers
    from app.context import SeamReaders
    from app.intake.queue import CeleryEnqueuer
    from app.intake.reconcile import reconcile_all
    from app.ledger.models import utcnow
    from app.observability.logs import configure_logging
    from workers.celery_app import create_celery_app

    settings = load_settings(require=("SEAM_API_KEY",))
    from app.ops.ledger_state import open_ledger

    ledger = open_ledger(settings)
    configure_logging(settings)
    # Only Seam and the ledger: no templates or senders to load for a catch-up.
    enqueuer = CeleryEnqueuer(create_celery_app(settings))
    readers = SeamReaders(*seam_readers(settings)).each()
    found = reconcile_all(ledger, readers, enqueuer, utcnow() - args.since)
    workspaces = f" ({len(readers)} workspaces)" if len(readers) > 1 else ""
    print(
        f"listed {found.listed} events from Seam{workspaces}; {found.recorded} were new to "
        "the ledger, "
        f"{found.queued} queued for processing"
    )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from app.intake.queue import CeleryEnqueuer
    from app.intake.sweeper import patience_for, sweep
    from app.observability.logs import configure_logging
    from workers.celery_app import create_celery_app

    settings = load_settings()
    from app.ops.ledger_state import open_ledger

    ledger = open_ledger(settings)
    configure_logging(settings)
    enqueuer = CeleryEnqueuer(create_celery_app(settings))
    swept = sweep(ledger, enqueuer, patience=patience_for(settings))
    print(
        f"re-queued {swept.events} events and {swept.deliveries} deliveries; "
        f"took back {swept.recovered} from stopped workers; "
        f"expired {swept.expired} whose stay had ended"
        + (f"; handed on {swept.undelivered} undelivered fallbacks" if swept.undelivered else "")
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from app.ledger.migrate import upgrade
    from app.ledger.store import make_engine
    from app.ops.ledger_state import describe_database

    settings = load_settings()
    try:
        upgrade(make_engine(settings.database_url))
    except OperationalError as exc:
        where = describe_database(settings.database_url)
        raise LedgerNotReady(
            f"cannot reach the ledger at {where} ({type(exc.orig).__name__}): check "
            "DATABASE_URL and that the database server is up"
        ) from exc
    print("ledger migrated to the latest revision")
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    from app.ops.deliveries import format_deliveries

    settings = load_settings()
    from app.ops.ledger_state import open_ledger

    rows = open_ledger(settings).recent_deliveries(args.limit)
    hotels = {w.workspace_id: w.name for w in settings.seam_workspaces}
    print(format_deliveries(rows, hotels))
    return 0


MIN_PASSWORD_LENGTH = 12


def _ops_user(args: argparse.Namespace) -> int:
    import getpass

    from app.console.passwords import hash_password

    name = args.name.strip()
    if not name or any(c in name for c in ":,$\n") or len(name) > 100:
        print("keycourier: a name has no ':', ',', '$' or newline", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            print("keycourier: the two passwords differ", file=sys.stderr)
            return 2
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"keycourier: use {MIN_PASSWORD_LENGTH} characters or more", file=sys.stderr)
        return 2
    # Only the hash is printed: add the line to OPS_USERS (comma-separated entries).
    print(f"{name}:{hash_password(password)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from app.ops.demo import run_demo

    return run_demo(port=args.port)
