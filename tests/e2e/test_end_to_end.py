"""The whole path through real processes: uvicorn, a Celery worker, Redis and PostgreSQL.

A signed event is POSTed to the web process; a real worker process picks it up from Redis,
reads Seam (stand-in) through the official SDK and sends through the Twilio and SendGrid SDKs
to their stand-ins. Then the processes' own logs are searched for anything secret.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin
from tests.conftest import ROOT, WEBHOOK_SECRET, provider_env
from tests.processes import Processes, free_port, post_sample, ready, running_web, wait_for

pytestmark = pytest.mark.e2e

PIN = "605213"
CODE_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"


@pytest.fixture
def service(
    seam: SeamStandin,
    twilio: TwilioStandin,
    sendgrid: SendGridStandin,
    clean_postgres_url: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[tuple[str, Processes]]:
    method = seam.get("access_method", CODE_ID)
    assert method is not None
    seam.put_access_method({**method, "code": PIN})
    env = {
        **provider_env(seam, twilio, sendgrid),
        "DATABASE_URL": clean_postgres_url,
        "REDIS_URL": redis_url,
    }
    with running_web(env, tmp_path) as (base, processes):
        processes.start("worker", "worker", "--concurrency", "4")
        yield base, processes


def test_event_to_sms_through_real_processes(
    service: tuple[str, Processes], twilio: TwilioStandin, sendgrid: SendGridStandin
) -> None:
    """A signed issued event becomes exactly one SMS and one email, and no log holds a secret."""
    base, processes = service

    response = post_sample(base, "access_method.issued.code", "msg_e2e_1", code=PIN)
    assert response.status_code == 200
    assert wait_for(lambda: len(twilio.sent) == 1 and len(sendgrid.sent) == 1, 60)
    [sms] = twilio.sent
    assert PIN in sms["body"]
    assert sms["to"] == "+15555550123"

    # Svix retrying, and the same state under a new event id: still one message each.
    assert post_sample(base, "access_method.issued.code", "msg_e2e_1").json()["outcome"] == (
        "duplicate"
    )
    post_sample(base, "access_method.issued.code", "msg_e2e_2", event_id="another-event-id")
    assert not wait_for(lambda: len(twilio.sent) > 1, seconds=5)
    assert len(sendgrid.sent) == 1

    logs = processes.stop()
    assert "delivery sent" in logs  # the processes did log; the checks below are not vacuous
    # One line per message sent says by whom and to whom, masked.
    sent = [json.loads(line) for line in logs.splitlines() if '"delivery sent' in line]
    assert sorted(line["message"] for line in sent) == [
        "delivery sent: sendgrid to a***@example.com",
        "delivery sent: twilio to +1********23",
    ]
    assert all(line["event_id"] for line in sent)
    for secret in (
        PIN,
        WEBHOOK_SECRET,
        "seam_testkey_standin",
        twilio.auth_token,
        "+15555550123",
        "alex.rivera@example.com",
        sendgrid.api_key,
    ):
        assert secret not in logs


def test_demo_runs_the_whole_path_with_no_accounts(tmp_path: Path) -> None:
    """`keycourier demo` serves, delivers dry-run messages and closes the card flag."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "app", "demo"],
        cwd=ROOT,
        env={**env, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SMS to +1********23" in result.stdout
    assert "1234" in result.stdout  # the sample PIN, printed from the dry-run outbox
    assert "https://ik.seam.co/ABCXYZ" in result.stdout
    assert "HTTP 400" in result.stdout  # the forged event
    assert "duplicate" in result.stdout
    assert "front-desk flag for the card: closed" in result.stdout


def test_stopping_single_machine_serve_stops_its_worker(seam: SeamStandin, tmp_path: Path) -> None:
    """SIGTERM to `keycourier serve` on the embedded defaults (a dyno stopping, a Ctrl-C in a
    service manager) takes its embedded worker down with it: nothing is left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "DATABASE_URL"))}
    port = free_port()
    processes = Processes({**env, **provider_env(seam, None, None), "PORT": str(port)}, tmp_path)
    serve = processes.start("serve", "serve")
    worker_pid = None
    try:
        assert wait_for(lambda: ready(f"http://127.0.0.1:{port}"), 60), "serve never got ready"
        assert wait_for(lambda: bool(_children(serve.pid)), 30), "no embedded worker started"
        worker_pid = _children(serve.pid)[0]

        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)

        assert wait_for(lambda: not _alive(worker_pid), 30), "the embedded worker outlived serve"
    finally:
        processes.stop()
        if worker_pid is not None and _alive(worker_pid):
            os.killpg(os.getpgid(worker_pid), signal.SIGKILL)


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.exists():
        return []
    found: list[int] = []
    for task in tasks.iterdir():
        children = task / "children"
        if children.exists():
            found += [int(child) for child in children.read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
