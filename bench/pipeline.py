"""End to end (webhook to SMS latency) and one worker's delivery throughput.

The stand-ins run in this process; keycourier's web and worker, and the load generator, run
as their own processes. Every event belongs to a guest of its own, so each SMS that reaches
the Twilio stand-in is matched to the event that caused it.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.ops.demo import free_port, wait_for
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.signing import signed_headers
from app.standins.twilio import TwilioStandin
from bench.procs import Proc, keycourier, own_peak_mb, python, wait_until_ready

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass(frozen=True)
class Commands:
    """The command lines of one configuration: the Procfile's, or the tuned variant's."""

    web: list[str]
    worker: list[str] | None = None
    beat: list[str] | None = None


@dataclass(frozen=True)
class Second:
    """One second of an end-to-end run, by when its webhooks were posted: how many, their
    latency, and the CPU the processes used meanwhile (cores, of the machine's)."""

    second: int
    events: int
    p50_ms: float
    max_ms: float
    worker_cores: float
    web_cores: float
    machine_busy: float  # the share of every core busy, whoever used it


@dataclass(frozen=True)
class EndToEndResult:
    events: int
    received: int
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    web_peak_rss_mb: float
    worker_peak_rss_mb: float
    seconds: tuple[Second, ...] = ()
    # SMS received per second from the first webhook posted to the last SMS: the rate the
    # processes sustained (the posting rate when they kept up).
    sustained: float = float("nan")


@dataclass(frozen=True)
class WorkerResult:
    processes: int
    deliveries: int
    per_second: float
    cpu_ms_per_delivery: float
    peak_rss_mb: float


class Hotel:
    """`guests` guests, each with a PIN code access method, in the Seam stand-in."""

    def __init__(self, seam: SeamStandin, guests: int) -> None:
        resources = SAMPLES / "resources"
        method = json.loads((resources / "access_method.code.json").read_text())
        grant = json.loads((resources / "access_grant.json").read_text())
        identity = json.loads((resources / "user_identity.json").read_text())
        seam.put_space(json.loads((resources / "space.json").read_text()))
        template = json.loads((SAMPLES / "events" / "access_method.issued.code.json").read_text())
        self.phones: list[str] = []
        self.events: list[dict[str, Any]] = []
        for n in range(guests):
            ids = {k: str(uuid.uuid4()) for k in ("method", "grant", "guest")}
            phone = f"+1555{n:07d}"
            seam.put_access_method(
                {**method, "access_method_id": ids["method"], "code": f"{n:06d}"}
            )
            seam.put_access_grant(
                {**grant, "access_grant_id": ids["grant"], "user_identity_id": ids["guest"],
                 "access_method_ids": [ids["method"]]}
            )  # fmt: skip
            seam.put_user_identity(
                {**identity, "user_identity_id": ids["guest"], "phone_number": phone,
                 "email_address": f"guest{n}@example.com"}
            )  # fmt: skip
            self.phones.append(phone)
            self.events.append(
                {**template, "event_id": str(uuid.uuid4()), "access_method_id": ids["method"],
                 "access_grant_ids": [ids["grant"]]}
            )  # fmt: skip

    def signed_requests(self) -> list[dict[str, Any]]:
        requests = []
        for event in self.events:
            body = json.dumps(event).encode()
            headers = signed_headers(SECRET, body, msg_id=f"msg_{event['event_id']}")
            requests.append({"headers": headers, "body": body.decode()})
        return requests


def _env(
    base: dict[str, str], seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin
) -> dict[str, str]:
    return {
        **base,
        "SEAM_API_KEY": seam.api_key,
        "SEAM_ENDPOINT": seam.url,
        "SEAM_WEBHOOK_SECRET": SECRET,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_BASE_URL": twilio.url,
        "SENDGRID_API_KEY": sendgrid.api_key,
        "SENDGRID_FROM_EMAIL": "keys@hotel.example",
        "SENDGRID_BASE_URL": sendgrid.url,
        # The folder the app runs from holds templates/ (README); the processes run in a
        # scratch folder of their own, so name it.
        "TEMPLATES_DIR": str(Path(__file__).resolve().parent.parent / "templates"),
    }


def _sms_times(twilio: TwilioStandin) -> dict[str, float]:
    """When the first SMS to each number reached the stand-in."""
    times: dict[str, float] = {}
    for request in twilio.requests:
        to = request.param("To")
        if request.method == "POST" and to and to not in times:
            times[to] = request.received_at
    return times


def _arrivals(twilio: TwilioStandin, sendgrid: SendGridStandin) -> list[float]:
    """When each message (SMS or email) reached its provider."""
    return [r.received_at for r in [*twilio.requests, *sendgrid.requests] if r.method == "POST"]


def _post_all(
    hotel: Hotel, port: int, rate: float, env: dict[str, str], workdir: Path, *, timeout: float
) -> list[float]:
    """Post every guest's event at `rate`/s from a load generator process; when each left."""
    requests_file, results_file = workdir / "requests.json", workdir / "sent.json"
    requests_file.write_text(json.dumps(hotel.signed_requests()))
    load = Proc(
        "loadgen",
        python("-m", "bench.loadgen", str(requests_file), str(results_file),
               "--url", f"http://127.0.0.1:{port}/webhooks/seam", "--rate", str(rate)),
        env, workdir,
    )  # fmt: skip
    load.process.wait(timeout=timeout)
    sent_at: list[float] = json.loads(results_file.read_text())["sent_at"]
    return sent_at


def _heartbeats(workdir: Path) -> int:
    return len(list(workdir.glob("worker-heartbeat*")))


def run_end_to_end(
    base_env: dict[str, str],
    workdir: Path,
    commands: Commands,
    *,
    rate: float = 100,
    seconds: int = 30,
) -> EndToEndResult:
    """Webhook posted -> SMS at the Twilio stand-in, at `rate` events/s for `seconds`, with
    the stand-ins answering at once, through the given processes (the web process alone in
    single-machine mode: it starts its own worker)."""
    workdir.mkdir(parents=True, exist_ok=True)
    events = int(rate * seconds)
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        hotel = Hotel(seam, events)
        port = free_port()
        env = {
            **_env(base_env, seam, twilio, sendgrid),
            "PORT": str(port),
            "WORKER_HEARTBEAT_FILE": str(workdir / "worker-heartbeat"),
        }
        procs = [Proc("web", keycourier(commands.web), env, workdir)]
        if commands.worker is not None:
            procs.append(Proc("worker", keycourier(commands.worker), env, workdir))
        if commands.beat is not None:
            procs.append(Proc("beat", keycourier(commands.beat), env, workdir))
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz")
            if not wait_for(lambda: _heartbeats(workdir) > 0, 60):
                raise RuntimeError(f"no worker started: see {workdir}")
            time.sleep(2)  # every worker process connects to the broker
            with (
                collector_paused(),
                Sampler(procs[0], procs[1] if commands.worker else None) as sampler,
            ):
                sent_at = _post_all(hotel, port, rate, env, workdir, timeout=seconds * 3)
                wait_for(lambda: len(_sms_times(twilio)) >= events, 120)
            # The embedded worker is a child of the web process: the worker figure is the
            # largest process of each tree (the web process's own peak is its first).
            web_rss = procs[0].peak_rss_mb() if commands.worker else own_peak_mb(procs[0].pid)
            worker_rss = procs[1].peak_rss_mb() if commands.worker else procs[0].peak_rss_mb()
        finally:
            for proc in procs:
                proc.stop()
        received = _sms_times(twilio)
    by_event = [
        (sent_at[n], (received[phone] - sent_at[n]) * 1000)
        for n, phone in enumerate(hotel.phones)
        if phone in received
    ]
    latencies = sorted(latency for _, latency in by_event)
    first_posted = min(sent_at)
    return EndToEndResult(
        events=events,
        received=len(latencies),
        rate=rate,
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else float("nan"),
        web_peak_rss_mb=web_rss,
        worker_peak_rss_mb=worker_rss,
        seconds=sampler.seconds(first_posted, by_event),
        sustained=sustained_rate(first_posted, received.values()),
    )


def sustained_rate(first_posted: float, arrivals: Iterable[float]) -> float:
    """Messages per second from the first webhook posted to the last message's arrival."""
    times = list(arrivals)
    if not times or max(times) <= first_posted:
        return float("nan")
    return len(times) / (max(times) - first_posted)


class Sampler:
    """The CPU of the web process, of the worker (its own processes, or the web process's
    children in single-machine mode) and of the whole machine, read every SAMPLE_SECONDS while
    the load runs: where a second's latency came from."""

    SAMPLE_SECONDS = 0.25

    def __init__(self, web: Proc, worker: Proc | None) -> None:
        self.web, self.worker = web, worker
        self.samples: list[tuple[float, float, float, float]] = []  # when, web, worker, busy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            web_own = self.web.own_cpu_seconds()
            worker = (
                self.worker.cpu_seconds()
                if self.worker is not None
                else self.web.cpu_seconds() - web_own
            )
            self.samples.append((time.time(), web_own, worker, _machine_busy_seconds()))
            if self._stop.wait(self.SAMPLE_SECONDS):
                return

    def seconds(self, start: float, by_event: list[tuple[float, float]]) -> tuple[Second, ...]:
        return timeline(self.samples, start, by_event, len(os.sched_getaffinity(0)))


def timeline(
    samples: list[tuple[float, float, float, float]],
    start: float,
    by_event: list[tuple[float, float]],
    cores: int,
) -> tuple[Second, ...]:
    """Each whole second from `start` that the samples cover: the events posted in it (their
    (posted, latency ms)), and the CPU used in it, read from (when, web, worker, machine busy)
    samples."""
    rows: list[Second] = []
    if not samples or not by_event:
        return ()
    columns = [[(sample[0], sample[n]) for sample in samples] for n in (1, 2, 3)]
    for n in range(int(max(sent for sent, _ in by_event) - start) + 1):
        low, high = start + n, start + n + 1
        if high > samples[-1][0]:
            break
        latencies = sorted(ms for sent, ms in by_event if low <= sent < high)
        if not latencies:
            continue
        web, worker, busy = (_at(column, high) - _at(column, low) for column in columns)
        rows.append(
            Second(
                second=n,
                events=len(latencies),
                p50_ms=statistics.median(latencies),
                max_ms=latencies[-1],
                worker_cores=worker,
                web_cores=web,
                machine_busy=busy / cores,
            )
        )
    return tuple(rows)


def _machine_busy_seconds() -> float:
    """CPU seconds every core has spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def queue_events(hotel: Hotel, env: dict[str, str], workdir: Path, web: list[str]) -> None:
    """Every guest's event through a web process into the queue, the web process stopped."""
    port = free_port()
    proc = Proc("web-queueing", keycourier(web), {**env, "PORT": str(port)}, workdir)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz")
        _post_all(hotel, port, 2000, env, workdir, timeout=600)
    finally:
        proc.stop()


def run_worker_throughput(
    base_env: dict[str, str],
    workdir: Path,
    commands: Commands,
    *,
    processes: int = 1,
    events: int = 2000,
) -> WorkerResult:
    """`processes` worker processes (WORKER_PROCESSES, the command line unchanged) draining
    `events` queued issued PINs (an SMS and an email each), with Seam answering in 50 ms and
    Twilio and SendGrid in 100 ms. Deliveries/s and CPU per delivery are both read over the
    steady state, from the 10th to the 90th percentile of arrivals at the providers: the
    start-up (imports, connections) is not a delivery's cost."""
    assert commands.worker is not None
    deliveries = 2 * events
    workdir.mkdir(parents=True, exist_ok=True)
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        hotel = Hotel(seam, events)
        env = {
            **_env(base_env, seam, twilio, sendgrid),
            "WORKER_PROCESSES": str(processes),
            "WORKER_HEARTBEAT_FILE": str(workdir / "worker-heartbeat"),
        }
        queue_events(hotel, env, workdir, commands.web)
        seam.latency, twilio.latency, sendgrid.latency = 0.05, 0.1, 0.1
        worker = Proc("worker", keycourier(commands.worker), env, workdir)
        samples: list[tuple[float, float]] = []
        try:
            deadline = time.monotonic() + 60 + deliveries / 10
            with collector_paused():
                while len(_arrivals(twilio, sendgrid)) < deliveries:
                    if time.monotonic() > deadline or worker.process.poll() is not None:
                        raise RuntimeError(f"the worker did not drain the queue: see {workdir}")
                    samples.append((time.time(), worker.cpu_seconds()))
                    time.sleep(0.2)
            samples.append((time.time(), worker.cpu_seconds()))
            rss = worker.peak_rss_mb()
        finally:
            worker.stop()
        times = sorted(_arrivals(twilio, sendgrid))
    low, high = times[len(times) // 10], times[(len(times) * 9) // 10]
    steady = len(times) * 0.8
    return WorkerResult(
        processes=processes,
        deliveries=len(times),
        per_second=steady / (high - low) if high > low else float("nan"),
        cpu_ms_per_delivery=(_at(samples, high) - _at(samples, low)) * 1000 / steady,
        peak_rss_mb=rss,
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process while a measurement runs. This process hosts the
    stand-ins (Seam, Twilio, SendGrid), which keep every request they answered: a collection
    over that heap, ~260,000 objects 18 s into end to end, held every answer for 130-200 ms,
    and with it every event in flight (bench/RESULTS.md). Seam and the providers do not run in
    keycourier's processes or in each other's. Reference counting still frees what it can;
    cycles wait for the collector, on again after the block (unless it was off before)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _at(samples: list[tuple[float, float]], when: float) -> float:
    """The CPU seconds the sampled process had used at `when` (linear between samples)."""
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t0 <= when <= t1:
            return c0 + (c1 - c0) * ((when - t0) / (t1 - t0) if t1 > t0 else 0)
    return samples[-1][1] if when > samples[-1][0] else samples[0][1]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]
