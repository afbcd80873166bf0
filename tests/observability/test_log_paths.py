"""Every log path, pushed with a PIN, an Instant Key URL, secrets, tokens, a phone number and an
email address: the web process handling requests (keycourier's and uvicorn's own lines), a
worker running a task, and Celery's own task logging. What comes out is JSON, redacted.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from app.intake.queue import PROCESS_EVENT, RedisEnqueuer
from app.ledger.store import Ledger, NewEvent
from app.observability.logs import configure_logging
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.signing import signed_headers
from app.web.main import create_app
from tests.conftest import WEBHOOK_SECRET, provider_env
from tests.processes import Processes, free_port, wait_for

PIN = "739164"
INSTANT_KEY = "https://ik.seam.co/QWERTY42"
SEAM_KEY = "seam_live_k3y5ecr3t"
SENDGRID_KEY = "SG.s3ndgr1d.k3y"
TOKEN = "eyJhbGciOi.t0k3n.s1gn4tur3"
# A Twilio auth token has no recognisable shape: it is removed because it is configured.
TWILIO_TOKEN = "9f3b2c1d8e7a6b5c4d3e2f1a0b9c8d7e"
PHONE = "+15555550123"
EMAIL = "alex.rivera@example.com"
SENSITIVE = (
    f"door code {PIN}, key {INSTANT_KEY}, webhook secret {WEBHOOK_SECRET}, api key {SEAM_KEY}, "
    f"sendgrid {SENDGRID_KEY}, Authorization: Bearer {TOKEN}, twilio {TWILIO_TOKEN}, "
    f"guest {PHONE} {EMAIL}"
)
# The phone number's digits and the address's local part: hidden in any encoding (a URL's too).
HIDDEN = (
    PIN, "QWERTY42", WEBHOOK_SECRET, SEAM_KEY, SENDGRID_KEY, TOKEN, TWILIO_TOKEN,
    "5555550123", "rivera",
)  # fmt: skip


def assert_redacted(text: str) -> list[dict[str, object]]:
    """Every log line of `text` is a JSON object and nothing hidden is in any of them."""
    for hidden in HIDDEN:
        assert hidden not in text
    assert "+1********23" in text  # masked, not dropped: the sensitive text did pass through
    assert "a***@example.com" in text
    lines = [line for line in text.splitlines() if line.strip()]
    # Celery prints this one line itself, outside logging, as it stops.
    logged = [line for line in lines if not line.endswith("shutdown (MainProcess)")]
    return [json.loads(line) for line in logged]


@pytest.fixture
def web_logs(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, io.StringIO]]:
    """The web app under a real uvicorn (in a thread), logging as the web process does."""
    stream = io.StringIO()
    settings = load_settings(
        {
            "SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "LOG_LEVEL": "DEBUG",
        }
    )
    configure_logging(settings, stream=stream)
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    from app.ledger.migrate import upgrade

    ledger = Ledger.from_url(ledger_url)
    upgrade(ledger.engine)
    app = create_app(settings, ledger=ledger, enqueuer=RedisEnqueuer(redis_url))

    async def boom(request: Request) -> Response:
        logging.getLogger("app.web.webhooks.seam").warning(
            "handling %s", SENSITIVE, extra={"event_id": 5}
        )
        raise RuntimeError(SENSITIVE)

    app.add_route("/boom", boom)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, 30)
    try:
        yield f"http://127.0.0.1:{port}", stream
    finally:
        server.should_exit = True
        thread.join(30)
        ledger.engine.dispose()
        logging.getLogger().handlers.clear()


def test_web_request_logs_are_redacted(web_logs: tuple[str, io.StringIO]) -> None:
    """keycourier's, Starlette's and uvicorn's lines while serving requests hide what they must."""
    base, stream = web_logs
    body = json.dumps(
        {"event_id": "ev-1", "event_type": "access_method.issued", "code": PIN}
    ).encode()
    signed = signed_headers(WEBHOOK_SECRET, body, msg_id="msg_logs_1")
    assert httpx.post(f"{base}/webhooks/seam", content=body, headers=signed).status_code == 200
    forged = {**signed, "svix-signature": "v1,AAAA"}
    assert httpx.post(f"{base}/webhooks/seam", content=body, headers=forged).status_code == 400
    assert httpx.get(f"{base}/boom", params={"to": PHONE, "email": EMAIL}).status_code == 500
    # uvicorn logs the crash after the 500 has gone out.
    assert wait_for(lambda: "Exception in ASGI application" in stream.getvalue(), 10)

    lines = assert_redacted(stream.getvalue())
    by_logger = {str(line["logger"]) for line in lines}
    assert {"app.web.webhooks.seam", "uvicorn.error", "uvicorn.access"} <= by_logger
    [crash] = [line for line in lines if line["logger"] == "uvicorn.error" and "exception" in line]
    assert "RuntimeError: door code [redacted]" in str(crash["exception"])
    assert any(line.get("event_id") == 5 for line in lines)


@pytest.fixture
def worker(
    seam: SeamStandin, clean_postgres_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Processes, dict[str, str]]]:
    env = {
        **provider_env(seam, None, None),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
        "WORKER_METRICS_PORT": str(free_port()),
        "WORKER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    }
    processes = Processes(env, tmp_path)
    processes.start("worker", "worker", "--concurrency", "2")
    try:
        yield processes, env
    finally:
        processes.stop()


def test_worker_and_celery_task_logs_are_redacted(
    worker: tuple[Processes, dict[str, str]], seam: SeamStandin, tmp_path: Path
) -> None:
    """A task's own lines and Celery's report of a crashed task carry ids and hide secrets."""
    processes, env = worker
    # Seam's answer holds everything: the task logs it when it schedules the retry.
    error = {"error": {"type": "internal_server_error", "message": SENSITIVE}, "ok": False}
    seam.fail_next(50, 500, error, path="/access_methods/get_related")
    ledger = Ledger.from_url(env["DATABASE_URL"])
    recorded = ledger.record_event(
        NewEvent(
            svix_id=None,
            seam_event_id="ev-logs-1",
            event_type="access_method.issued",
            access_method_id="f47ac10b-58cc-4372-a567-0e02b2c3d479",
            access_grant_ids=("b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b",),
        )
    )
    ledger.engine.dispose()
    enqueuer = RedisEnqueuer(env["REDIS_URL"])
    enqueuer.enqueue_events([recorded.event_id])
    # A task whose argument is the sensitive text itself: the ledger rejects it, the task
    # crashes, and Celery logs the failure with the argument in the exception.
    from workers.celery_app import create_celery_app

    create_celery_app(load_settings(env)).send_task(PROCESS_EVENT, args=[SENSITIVE])

    log_file = tmp_path / "worker.log"

    def both_logged() -> bool:
        text = log_file.read_text()
        return "will retry" in text and '"level": "error", "logger": "celery.app.trace"' in text

    assert wait_for(both_logged, 60), log_file.read_text()

    # The worker's own endpoints while it runs: metrics and the liveness check.
    metrics = httpx.get(f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics").text
    assert 'keycourier_retries_total{what="event"}' in metrics
    health = subprocess.run(
        [sys.executable, "-m", "app", "worker-health"],
        env={**processes.env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert health.returncode == 0, health.stderr

    lines = assert_redacted(processes.stop())
    retries = [line for line in lines if "will retry" in str(line.get("message"))]
    [retry, *_] = [line for line in retries if line.get("event_id") == recorded.event_id]
    assert retry["task_id"]
    assert "door code [redacted]" in str(retry["message"])
    [crash] = [
        line for line in lines if line["logger"] == "celery.app.trace" and line["level"] == "error"
    ]
    assert crash["task_id"]
    # The ledger's refusal names the kind of value refused, never the value (assert_redacted
    # above checked every line holds nothing sensitive).
    assert "LedgerRefused" in str(crash.get("exception"))
