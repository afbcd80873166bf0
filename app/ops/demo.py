"""`keycourier demo`: the whole path on one machine, with no accounts.

It starts a Seam stand-in serving the sample guest (Alex Rivera, Room 204: a PIN code, an
Instant Key and a key card), runs `keycourier serve` on the embedded defaults (SQLite ledger,
embedded broker and worker, dry-run channels), posts signed sample events to
/webhooks/seam, and prints what the guest and the front desk would have received.
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
from pathlib import Path

import httpx

from app.ledger.store import Ledger
from app.observability.masking import mask_destination
from app.ops.deliveries import format_deliveries
from app.standins.seam import SAMPLES, SeamStandin
from app.standins.signing import signed_headers

FRONT_DESK = "frontdesk@hotel.example"
CARD_ID = "27d8ad77-55c2-4e20-b5b3-43555926f0e8"
# Provider settings the demo must not inherit: it sends nothing anywhere.
SCRUBBED = ("REDIS_URL", "DATABASE_URL", "TWILIO_", "SENDGRID_", "SEAM_", "FRONT_DESK_EMAIL")


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


def _drive(base: str, secret: str, seam: SeamStandin, outbox: Path, workdir: Path) -> int:
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
        for path in sorted(outbox.glob("*.json")):
            _print_message(path)

        print("\n3. The front desk encodes the card; Seam says it is issued:")
        card = seam.get("access_method", CARD_ID)
        assert card is not None
        seam.put_access_method({**card, "is_issued": True, "is_encoding_required": False})
        _post(client, secret, "access_method.issued.card")
        ledger = Ledger.from_url(f"sqlite:///{workdir / 'ledger.sqlite3'}")
        closed = wait_for(lambda: all(f.status == "closed" for f in ledger.flags(CARD_ID)), 30)
        print(f"   front-desk flag for the card: {'closed' if closed else 'still open'}")

        print("\n4. The ledger (keycourier deliveries):")
        print(format_deliveries(ledger.recent_deliveries(20)))
    return 0 if closed else 1


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
