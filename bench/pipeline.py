"""End to end (webhook to SMS latency) and one worker's delivery throughput.

The stand-ins run in this process; keycourier's web and worker, and the load generator, run
as their own processes. Every event belongs to a guest of its own, so each SMS that reaches
the Twilio stand-in is matched to the event that caused it.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.ops.demo import free_port, wait_for
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.signing import signed_headers
from app.standins.twilio import TwilioStandin
from bench.procs import Proc, wait_until_ready

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WORKER_POOL = "threads"
WORKER_CONCURRENCY = 64


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


@dataclass(frozen=True)
class WorkerResult:
    pool: str
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
        "TEMPLATES_DIR": str(Path(__file__).resolve().parent.parent / "templates"),
        "LOG_LEVEL": "WARNING",
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
        ["-m", "bench.loadgen", str(requests_file), str(results_file),
         "--url", f"http://127.0.0.1:{port}/webhooks/seam", "--rate", str(rate)],
        env, workdir,
    )  # fmt: skip
    load.process.wait(timeout=timeout)
    sent_at: list[float] = json.loads(results_file.read_text())["sent_at"]
    return sent_at


def _worker(env: dict[str, str], workdir: Path) -> Proc:
    return Proc(
        "worker", ["-m", "app", "worker", "--concurrency", str(WORKER_CONCURRENCY)], env, workdir
    )


def run_end_to_end(
    base_env: dict[str, str], workdir: Path, *, rate: float = 100, seconds: int = 60
) -> EndToEndResult:
    workdir.mkdir(parents=True, exist_ok=True)
    events = int(rate * seconds)
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        hotel = Hotel(seam, events)
        port = free_port()
        env = {**_env(base_env, seam, twilio, sendgrid), "PORT": str(port)}
        web = Proc("web", ["-m", "app", "serve", "--no-worker"], env, workdir)
        worker = _worker(env, workdir)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz")
            time.sleep(2)  # the worker connects to the broker
            sent_at = _post_all(hotel, port, rate, env, workdir, timeout=seconds * 3)
            wait_for(lambda: len(_sms_times(twilio)) >= events, 120)
            web_rss, worker_rss = web.peak_rss_mb(), worker.peak_rss_mb()
        finally:
            web.stop()
            worker.stop()
        received = _sms_times(twilio)
    latencies = sorted(
        (received[phone] - sent_at[n]) * 1000
        for n, phone in enumerate(hotel.phones)
        if phone in received
    )
    return EndToEndResult(
        events=events,
        received=len(latencies),
        rate=rate,
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=_percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else float("nan"),
        web_peak_rss_mb=web_rss,
        worker_peak_rss_mb=worker_rss,
    )


def run_worker_throughput(
    base_env: dict[str, str], workdir: Path, *, events: int = 1500
) -> WorkerResult:
    """One worker draining `events` issued PINs (an SMS and an email each), with Seam answering
    in 50 ms and Twilio (and SendGrid) in 100 ms."""
    deliveries = 2 * events
    workdir.mkdir(parents=True, exist_ok=True)
    with SeamStandin() as seam, TwilioStandin() as twilio, SendGridStandin() as sendgrid:
        hotel = Hotel(seam, events)
        port = free_port()
        env = {**_env(base_env, seam, twilio, sendgrid), "PORT": str(port)}
        web = Proc("web", ["-m", "app", "serve", "--no-worker"], env, workdir)
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz")
            _post_all(hotel, port, 2000, env, workdir, timeout=300)
        finally:
            web.stop()
        # Everything is queued; now the worker alone, against slow providers.
        seam.latency, twilio.latency, sendgrid.latency = 0.05, 0.1, 0.1
        worker = _worker(env, workdir)
        try:
            wait_for(lambda: len(_arrivals(twilio, sendgrid)) >= deliveries, 600)
            cpu, rss = worker.cpu_seconds(), worker.peak_rss_mb()
        finally:
            worker.stop()
        times = sorted(_arrivals(twilio, sendgrid))
    # The steady state: from the 10th to the 90th percentile of arrivals.
    low, high = times[len(times) // 10], times[(len(times) * 9) // 10]
    per_second = (len(times) * 0.8) / (high - low) if high > low else float("nan")
    return WorkerResult(
        pool=f"{WORKER_POOL} x{WORKER_CONCURRENCY}",
        deliveries=len(times),
        per_second=per_second,
        cpu_ms_per_delivery=cpu * 1000 / max(1, len(times)),
        peak_rss_mb=rss,
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]
