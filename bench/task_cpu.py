"""The CPU of the worker's task body, in one thread, without Celery: `python -m bench.task_cpu`.

Each issued PIN is processed as the worker's `process_event` task does (`handle_event`: read
Seam, plan, send the SMS and the email, record every step), against the stand-ins answering at
once, on a fresh PostgreSQL ledger, with the worker's logging (LOG_LEVEL unset: info lines,
JSON, redacted) written to /dev/null. `time.thread_time()` counts this thread's CPU only, so
the figure holds on a busy machine where a whole worker's CPU per delivery swings. The
stand-ins run in a process of their own, as Seam and the providers are elsewhere in
production: their threads take no turn at this process's interpreter lock, and a profile holds
only keycourier's own calls (`--profile FILE`: a cProfile of the measured loop in wall time,
waits included, `python -m pstats FILE`; `py-spy record -- python -m bench.task_cpu` samples
only what runs).
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.context import Context
from app.events.tries import handle_event
from app.ledger.batch import NewEvent
from app.ledger.models import EventStatus
from app.observability.logs import configure_logging
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from bench.__main__ import fresh_postgres
from bench.pipeline import Hotel, _env


def _standins(guests: int, channel: Connection) -> None:
    """The child process: the stand-ins and the hotel's guests in the Seam stand-in. Sends the
    environment that points at them and the hotel's events, then, when told to stop, how
    many messages the providers took."""
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        hotel = Hotel(seam, guests)
        channel.send((_env({}, seam, twilio, sendgrid), hotel.events))
        channel.recv()
        channel.send(sum(1 for r in [*twilio.requests, *sendgrid.requests] if r.method == "POST"))


def _record(context: Context, events: list[dict[str, Any]]) -> list[int]:
    return [
        context.ledger.record_event(
            NewEvent(
                svix_id=f"msg_{event['event_id']}",
                seam_event_id=event["event_id"],
                event_type=event["event_type"],
                workspace_id=event.get("workspace_id"),
                access_method_id=event["access_method_id"],
                access_grant_ids=tuple(event["access_grant_ids"]),
                status=EventStatus.RECEIVED,
            )
        ).event_id
        for event in events
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.task_cpu")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--log-level", help="LOG_LEVEL (default: unset, as in the Procfile)")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    total = args.events + args.warmup
    ours, theirs = multiprocessing.Pipe()
    # Spawned: this process has threads of its own by then (the ledger's pool, logging).
    child = multiprocessing.get_context("spawn").Process(target=_standins, args=(total, theirs))
    child.start()
    try:
        env, events = ours.recv()
        with fresh_postgres() as database_url:
            os.environ.update(env | {"DATABASE_URL": database_url})
            os.environ.pop("LOG_LEVEL", None)
            if args.log_level:
                os.environ["LOG_LEVEL"] = args.log_level
            settings = load_settings()
            with open(os.devnull, "w") as sink:
                configure_logging(settings, sink)
                context = Context.from_settings(settings)
                ids = _record(context, events)
                for event_id in ids[: args.warmup]:
                    handle_event(context, event_id)
                measured = ids[args.warmup :]
                # CPU time, not wall time: waiting on PostgreSQL and the stand-ins is not cost.
                profiler = cProfile.Profile() if args.profile else None
                start = time.thread_time()
                if profiler:
                    profiler.enable()
                for event_id in measured:
                    handle_event(context, event_id)
                if profiler:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                spent = time.thread_time() - start
                context.ledger.engine.dispose()
        ours.send("stop")
        deliveries = ours.recv()
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    print(
        f"{len(measured)} events, {deliveries} deliveries in all: "
        f"{spent * 1000 / len(measured):.2f} ms of CPU per event, "
        f"{spent * 1000 / (2 * len(measured)):.2f} ms per delivery (task body, one thread)"
    )


if __name__ == "__main__":
    main()
