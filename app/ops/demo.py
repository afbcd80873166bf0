"""`keycourier demo`: the whole path on one machine, with no accounts.

It starts a Seam stand-in serving the sample guest (Alex Rivera, Room 204: a PIN code, an
Instant Key and a key card, for a stay from tomorrow), runs `keycourier serve` on the embedded
defaults (SQLite ledger, embedded broker and worker, dry-run channels), posts signed sample
events to /webhooks/seam, prints what the guest and the front desk would have received, waits
until every delivery is final (the card-ready messages included) and shows the ledger, then
says what to do next.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from app.ledger.deliveries import ON_ITS_WAY
from app.ledger.store import Ledger
from app.observability.masking import mask_destination
from app.ops.deliveries import format_deliveries
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.signing import signed_headers

FRONT_DESK = "frontdesk@hotel.example"
CARD_ID = "27d8ad77-55c2-4e20-b5b3-43555926f0e8"
GRANT_ID = "b2c4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b"
# Provider settings the demo must not inherit (it sends nothing anywhere), and settings that
# would change what it shows (a delivery window, fewer channels, no card-ready notice).
SCRUBBED = (
    "REDIS_URL", "DATABASE_URL", "TWILIO_", "SENDGRID_", "SEAM_", "FRONT_DESK_EMAIL",
    "DELIVERY_", "QUIET_HOURS", "NOTIFY_", "PUBLIC_BASE_URL", "OPS_", "API_TOKENS",
    "WORKER_HEARTBEAT_FILE", "TEMPLATES_DIR", "DRY_RUN_OUTBOX",
)  # fmt: skip
# The guest's messages (PIN and Instant Key, SMS and email), the front desk's card email, and,
# once the card is encoded, the card-ready SMS and email.
EXPECTED_DELIVERIES = 7


def run_demo(port: int = 0, templates_dir: Path | None = None) -> int:
    templates = (templates_dir or Path(os.environ.get("TEMPLATES_DIR", "templates"))).resolve()
    if not (templates / "pin_code").is_dir():
        print(f"keycourier demo: no templates in {templates}; run it from the repository root")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="keycourier-demo-"))
    outbox = workdir / "outbox"
    port = port or free_port()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

    with SeamStandin() as seam:
        seam.load_samples()
        _stay_from_tomorrow(seam)
        env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
        env.update(
            SEAM_API_KEY=seam.api_key,
            SEAM_ENDPOINT=seam.url,
            SEAM_WEBHOOK_SECRET=secret,
            DATABASE_URL=f"sqlite:///{workdir / 'ledger.sqlite3'}",
            TEMPLATES_DIR=str(templates),
            DRY_RUN_OUTBOX=str(outbox),
            FRONT_DESK_EMAIL=FRONT_DESK,
        )
        log_path = workdir / "service.log"
        print(f"keycourier demo: working in {workdir} (service log: {log_path})")
        with log_path.open("wb") as log_file:
            service = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "app", "serve", "--port", str(port)],
                cwd=workdir,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                return _drive(f"http://127.0.0.1:{port}", secret, seam, outbox, workdir)
            finally:
                service.terminate()
                service.wait(timeout=30)


def _stay_from_tomorrow(seam: SeamStandin) -> None:
    """The sample stay (dated far ahead in the samples, which tests rely on) moved to start
    tomorrow at 15:00 and end three days later at 11:00 (UTC), so what the demo prints reads
    like a real booking."""
    grant = seam.get("access_grant", GRANT_ID)
    assert grant is not None
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    starts = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 15, tzinfo=UTC)
    ends = starts + timedelta(days=2, hours=20)
    seam.put_access_grant({**grant, "starts_at": _seam_time(starts), "ends_at": _seam_time(ends)})


def _seam_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _drive(base: str, secret: str, seam: SeamStandin, outbox: Path, workdir: Path) -> int:
    ledger_url = f"sqlite:///{workdir / 'ledger.sqlite3'}"
    shown: set[Path] = set()
    with httpx.Client(base_url=base, timeout=10) as client:
        if not wait_for(lambda: _ready(client), 60):
            print("keycourier demo: the service did not become ready; see the service log")
            return 1
        print("\n1. Seam posts signed events to /webhooks/seam")
        for name in (
            "access_method.issued.code",
            "access_method.issued.mobile_key",
            "access_method.card_encoding_required",
        ):
            _post(client, secret, name)
        print("   ...and the same PIN event again (Svix retries with the same svix-id):")
        _post(
            client, secret, "access_method.issued.code", msg_id="msg_demo_access_method.issued.code"
        )
        print("   ...and a forged one (signed with another secret):")
        forged = "whsec_" + base64.b64encode(b"not the secret you are looking for").decode()
        _post(client, forged, "access_method.issued.code", msg_id="msg_forged")

        print("\n2. The worker fetches the current state from Seam and delivers (dry run):")
        if not wait_for(lambda: len(list(outbox.glob("*.json"))) >= 5, 60):
            print("keycourier demo: fewer messages than expected; see the service log")
            return 1
        _print_new_messages(outbox, shown)

        print("\n3. The front desk encodes the card; Seam says it is issued:")
        card = seam.get("access_method", CARD_ID)
        assert card is not None
        seam.put_access_method({**card, "is_issued": True, "is_encoding_required": False})
        _post(client, secret, "access_method.issued.card")
        ledger = Ledger.from_url(ledger_url)
        closed = wait_for(lambda: all(f.status == "closed" for f in ledger.flags(CARD_ID)), 30)
        print(f"   front-desk flag for the card: {'closed' if closed else 'still open'}")
        # The worker is done when every message it owes is final: the card-ready notice is
        # planned after the flag closes, so wait for all of them, not just the flag.
        finished = wait_for(lambda: _all_final(ledger), 60)
        _print_new_messages(outbox, shown)

        print("\n4. The ledger (keycourier deliveries):")
        print(format_deliveries(ledger.recent_deliveries(20)))
        if not finished:
            print("keycourier demo: some deliveries are not final yet; see the service log")
        _next_steps(ledger_url, workdir)
    return 0 if closed and finished else 1


def _all_final(ledger: Ledger) -> bool:
    deliveries = ledger.recent_deliveries(50)
    return len(deliveries) >= EXPECTED_DELIVERIES and not any(
        d.status in ON_ITS_WAY for d in deliveries
    )


def _print_new_messages(outbox: Path, shown: set[Path]) -> None:
    for path in sorted(outbox.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
        if path not in shown:
            shown.add(path)
            _print_message(path)


def _next_steps(ledger_url: str, workdir: Path) -> None:
    print(
        f"""
5. What next
   Every message above was rendered and recorded, not sent: the channels ran dry.
   - Run it for real: ./scripts/serve with SEAM_API_KEY and SEAM_WEBHOOK_SECRET set
     (`keycourier register-webhook --url https://YOUR-HOST` creates the webhook and prints
     the secret); add the Twilio and SendGrid settings to send (README, "Settings"), then
     `keycourier doctor` checks every setting against the real services.
   - Open the ops console: `keycourier ops-user NAME`, set OPS_USERS and OPS_SESSION_SECRET,
     run `keycourier serve` and open http://127.0.0.1:8000/ops/
   - Edit the messages in templates/ (templates/README.md), then `keycourier templates check`.
   - This demo's ledger stays in {workdir}:
     DATABASE_URL={ledger_url} keycourier deliveries"""
    )


def _post(client: httpx.Client, secret: str, name: str, msg_id: str | None = None) -> None:
    body = (SAMPLES / "events" / f"{name}.json").read_bytes()
    headers = signed_headers(secret, body, msg_id=msg_id or f"msg_demo_{name}")
    response = client.post("/webhooks/seam", content=body, headers=headers)
    outcome = response.json().get("outcome", "")
    print(f"   {name:<40} -> HTTP {response.status_code} {outcome}")


def _print_message(path: Path) -> None:
    message = json.loads(path.read_text())
    to = mask_destination(message["to"])
    if "body" in message:
        print(f"\n   --- SMS to {to} ---\n{_indent(message['body'])}")
    else:
        print(f"\n   --- Email to {to}: {message['subject']} ---\n{_indent(message['text'])}")
        print(f"   (HTML part: {len(message['html'])} characters)")


def _indent(text: str) -> str:
    return "\n".join(f"   | {line}" for line in text.strip().splitlines())


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
