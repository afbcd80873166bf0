"""`keycourier demo`: the whole path on one machine, with no accounts.

It starts a Seam stand-in serving the sample guest (Alex Rivera, Room 204: a PIN code, an
Instant Key and a key card, for a stay from tomorrow), runs `keycourier serve` on the embedded
defaults (SQLite ledger, embedded broker and worker, dry-run channels), posts signed sample
events to /webhooks/seam, prints what the guest and the front desk would have received, waits
until every delivery is final (the card-ready messages included) and shows the ledger, then
says what to do next.

With SEAM_WORKSPACES_FILE set it does all of that for every workspace the file lists, each
with the sample guest of its own, its events posted to its own /webhooks/seam/<workspace_id>
signed with its own secret (app/ops/demo_group.py), and shows which hotel each message and
delivery is for.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from app.errors import ConfigError
from app.ledger.deliveries import ON_ITS_WAY
from app.ledger.store import Ledger
from app.observability.masking import mask_destination
from app.ops.deliveries import format_deliveries
from app.ops.demo_group import DemoHotel, group_env, group_hotels, new_secret
from app.standins.seam import SeamStandin
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
    group_file = os.environ.get("SEAM_WORKSPACES_FILE", "").strip()
    try:
        hotels = group_hotels(Path(group_file)) if group_file else [DemoHotel(new_secret())]
    except ConfigError as exc:
        print(f"keycourier demo: {exc}")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="keycourier-demo-"))
    outbox = workdir / "outbox"
    port = port or free_port()

    with SeamStandin() as seam:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
        for hotel in hotels:
            hotel.load(seam)
            _stay_from_tomorrow(seam, hotel)
        if group_file:
            env.update(group_env(hotels, workdir))
        else:
            env.update(SEAM_API_KEY=seam.api_key, SEAM_WEBHOOK_SECRET=hotels[0].secret)
        env.update(
            SEAM_ENDPOINT=seam.url,
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
                return _drive(f"http://127.0.0.1:{port}", hotels, seam, outbox, workdir)
            finally:
                service.terminate()
                service.wait(timeout=30)


def _stay_from_tomorrow(seam: SeamStandin, hotel: DemoHotel) -> None:
    """The sample stay (dated far ahead in the samples, which tests rely on) moved to start
    tomorrow at 15:00 and end three days later at 11:00 (UTC), so what the demo prints reads
    like a real booking."""
    grant = seam.get("access_grant", hotel.id(GRANT_ID))
    assert grant is not None
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    starts = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 15, tzinfo=UTC)
    ends = starts + timedelta(days=2, hours=20)
    seam.put_access_grant({**grant, "starts_at": _seam_time(starts), "ends_at": _seam_time(ends)})


def _seam_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _drive(
    base: str, hotels: list[DemoHotel], seam: SeamStandin, outbox: Path, workdir: Path
) -> int:
    ledger_url = f"sqlite:///{workdir / 'ledger.sqlite3'}"
    shown: set[Path] = set()
    group = hotels[0].workspace_id is not None
    with httpx.Client(base_url=base, timeout=10) as client:
        if not wait_for(lambda: _ready(client), 60):
            print("keycourier demo: the service did not become ready; see the service log")
            return 1
        ledger = Ledger.from_url(ledger_url)
        names = {hotel.workspace_id: hotel.name for hotel in hotels if hotel.workspace_id}
        where = "each workspace's own /webhooks/seam/<workspace_id>" if group else "/webhooks/seam"
        print(f"\n1. Seam posts signed events to {where}")
        for hotel in hotels:
            if group:
                print(f"   {hotel.name}: POST {hotel.path}, signed with its own secret")
            for name in (
                "access_method.issued.code",
                "access_method.issued.mobile_key",
                "access_method.card_encoding_required",
            ):
                _post(client, hotel, name)
        _refused(client, hotels)

        print("\n2. The worker fetches the current state from Seam and delivers (dry run):")
        if not wait_for(lambda: len(list(outbox.glob("*.json"))) >= 5 * len(hotels), 60):
            print("keycourier demo: fewer messages than expected; see the service log")
            return 1
        _print_new_messages(outbox, shown, ledger, names)

        print("\n3. The front desk encodes the card; Seam says it is issued:")
        for hotel in hotels:
            if group:
                print(f"   {hotel.name}: POST {hotel.path}")
            card = seam.get("access_method", hotel.id(CARD_ID))
            assert card is not None
            seam.put_access_method({**card, "is_issued": True, "is_encoding_required": False})
            _post(client, hotel, "access_method.issued.card")
        cards = [hotel.id(CARD_ID) for hotel in hotels]
        closed = wait_for(
            lambda: all(f.status == "closed" for card in cards for f in ledger.flags(card)), 30
        )
        print(f"   front-desk flag for the card: {'closed' if closed else 'still open'}"
              + (" (every hotel's)" if group and closed else ""))  # fmt: skip
        # The worker is done when every message it owes is final: the card-ready notice is
        # planned after the flag closes, so wait for all of them, not just the flag.
        expected = EXPECTED_DELIVERIES * len(hotels)
        finished = wait_for(lambda: _all_final(ledger, expected), 60)
        _print_new_messages(outbox, shown, ledger, names)

        print("\n4. The ledger (keycourier deliveries):")
        deliveries = ledger.recent_deliveries(expected + 10)
        print(format_deliveries(deliveries, names))
        if not finished:
            print("keycourier demo: some deliveries are not final yet; see the service log")
        _next_steps(ledger_url, workdir, group)
    return 0 if closed and finished else 1


def _refused(client: httpx.Client, hotels: list[DemoHotel]) -> None:
    """A Svix retry (answered, not recorded twice), and what keycourier refuses: an event
    signed with a secret not its own (in a group: another hotel's), and one naming another
    hotel's workspace."""
    first = hotels[0]
    print("   ...and the same PIN event again (Svix retries with the same svix-id):")
    _post(client, first, "access_method.issued.code")
    if len(hotels) == 1:
        print("   ...and a forged one (signed with another secret):")
        forged = "whsec_" + base64.b64encode(b"not the secret you are looking for").decode()
        _post(client, replace(first, secret=forged), "access_method.issued.code", "msg_forged")
        return
    other = hotels[1]
    print(f"   ...and {first.name}'s event signed with {other.name}'s secret:")
    _post(client, replace(first, secret=other.secret), "access_method.issued.code", "msg_forged")
    print(f"   ...and {other.name}'s event posted to {first.name}'s URL, with its secret:")
    body = other.event("access_method.issued.code")
    _post(client, first, "access_method.issued.code", "msg_wrong_workspace", body=body)


def _all_final(ledger: Ledger, expected: int) -> bool:
    deliveries = ledger.recent_deliveries(expected + 50)
    return len(deliveries) >= expected and not any(d.status in ON_ITS_WAY for d in deliveries)


def _print_new_messages(
    outbox: Path, shown: set[Path], ledger: Ledger, names: dict[str, str]
) -> None:
    """Each message not shown yet, oldest first; in a group, with the hotel it is for."""
    for path in sorted(outbox.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
        if path not in shown:
            shown.add(path)
            _print_message(path, ledger, names)


def _next_steps(ledger_url: str, workdir: Path, group: bool) -> None:
    run = (
        """- Run it for real: ./scripts/serve with SEAM_WORKSPACES_FILE, and each workspace's
     key and webhook secret in the variables it names (README, "Hotel groups");
     `keycourier register-webhook --url https://YOUR-HOST` creates every workspace's webhook
     at /webhooks/seam/<workspace_id> and prints its secret; add the Twilio and SendGrid
     settings to send, then `keycourier doctor` checks every workspace and setting."""
        if group
        else """- Run it for real: ./scripts/serve with SEAM_API_KEY and SEAM_WEBHOOK_SECRET set
     (`keycourier register-webhook --url https://YOUR-HOST` creates the webhook and prints
     the secret); add the Twilio and SendGrid settings to send (README, "Settings"), then
     `keycourier doctor` checks every setting against the real services."""
    )
    print(
        f"""
5. What next
   Every message above was rendered and recorded, not sent: the channels ran dry.
   {run}
   - Open the ops console: `keycourier ops-user NAME`, set OPS_USERS and OPS_SESSION_SECRET,
     run `keycourier serve` and open http://127.0.0.1:8000/ops/
   - Edit the messages in templates/ (templates/README.md), then `keycourier templates check`.
   - This demo's ledger stays in {workdir}:
     DATABASE_URL={ledger_url} keycourier deliveries"""
    )


def _post(
    client: httpx.Client,
    hotel: DemoHotel,
    name: str,
    msg_id: str | None = None,
    body: bytes | None = None,
) -> None:
    """POST the hotel's sample event to its URL, signed with its secret, as Seam would."""
    body = body if body is not None else hotel.event(name)
    headers = signed_headers(hotel.secret, body, msg_id=msg_id or hotel.msg_id(name))
    response = client.post(hotel.path, content=body, headers=headers)
    outcome = response.json().get("outcome", "")
    print(f"   {name:<40} -> HTTP {response.status_code} {outcome}")


def _print_message(path: Path, ledger: Ledger, names: dict[str, str]) -> None:
    message = json.loads(path.read_text())
    to = mask_destination(message["to"])
    hotel = f" ({_hotel_of(message, ledger, names)})" if names else ""
    if "body" in message:
        print(f"\n   --- SMS to {to}{hotel} ---\n{_indent(message['body'])}")
    else:
        print(
            f"\n   --- Email to {to}{hotel}: {message['subject']} ---\n{_indent(message['text'])}"
        )
        print(f"   (HTML part: {len(message['html'])} characters)")


def _hotel_of(message: dict[str, object], ledger: Ledger, names: dict[str, str]) -> str:
    """The hotel a dry-run message is for: its delivery's workspace (reference kc-<id>)."""
    reference = str(message.get("reference", ""))
    delivery_id = reference.removeprefix("kc-")
    delivery = ledger.get_delivery(int(delivery_id)) if delivery_id.isdigit() else None
    if delivery is None:
        return "hotel unknown"
    return names.get(delivery.workspace_id or "", delivery.workspace_id or "hotel unknown")


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
