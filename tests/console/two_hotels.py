"""Two hotels' guests in one ledger, and console users and API tokens of every role scoped to
one of them, for the scope tests.

Hotel Lumière's guest (Alex Rivera) comes through the real pipeline from the Seam stand-in's
samples (workspace 661025d3-..., space 5e1a2b3c-...): a PIN on both channels and a key card
waiting at the front desk. Harbour Inn's guest (Morgan Blake) is planned through the same
factory in another workspace and space, with a card flag of their own.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select

from app.console.passwords import hash_password
from app.context import Context
from app.delivery.planned import About, Destination, new_delivery
from app.events.processing import process_event
from app.ledger.models import FlagStatus, FrontDeskFlag
from app.messages.kinds import MessageKind
from app.standins.seam import SeamStandin
from tests.conftest import TEMPLATES
from tests.console.support import SESSION_SECRET
from tests.events.test_pipeline import CARD_ID, CODE_ID, PIN, record, set_method

LUMIERE_WORKSPACE = "661025d3-c1d2-403c-83a8-af153aaedfbc"
LUMIERE_SPACE = "5e1a2b3c-4d5e-4f60-8172-839405162738"
HARBOUR_WORKSPACE = "0b7a9c1e-2f3d-4e5a-9b8c-7d6e5f4a3b2c"
HARBOUR_SPACE = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
HARBOUR_METHOD = "c0ffee00-1111-4222-8333-444455556666"
HARBOUR_CARD = "c0ffee00-7777-4888-9999-aaaabbbbcccc"
HARBOUR_GUEST = "Morgan Blake"
HARBOUR_RESERVATION = "HARBOUR-7731"
HARBOUR_PHONE = "+15555550199"
HARBOUR_EMAIL = "morgan.blake@harbour.example"
# What must never reach someone scoped to Hotel Lumière (the masked phone and email too).
HARBOUR_TRACES = (HARBOUR_GUEST, HARBOUR_RESERVATION, "+1********99", "m***@harbour.example",
                  HARBOUR_METHOD, HARBOUR_CARD, "Harbour Inn")  # fmt: skip
LUMIERE_GUEST = "Alex Rivera"
LUMIERE_RESERVATION = "reservation-8841"
LUMIERE_TRACES = (LUMIERE_RESERVATION, CODE_ID, CARD_ID, "+1********23")
PASSWORD = "a long password for every one of them"
TOKENS = {
    "pms-lumiere": "token-of-the-lumiere-pms-0123456789",
    "pms-lumiere-room": "token-of-the-lumiere-room-pms-012345",
    "pms-group": "token-of-the-whole-group-0123456789",
}
BARE_TOKEN = "a-bare-token-as-before-roles-0123456"
PROPERTIES = f"""
[workspaces."{LUMIERE_WORKSPACE}"]
property_name = "Hotel Lumière"

[workspaces."{HARBOUR_WORKSPACE}"]
property_name = "Harbour Inn"
"""
ACCESS = f"""
[users.lumiere-admin]
role = "admin"
workspaces = ["{LUMIERE_WORKSPACE}"]

[users.lumiere-desk]
role = "desk"
workspaces = ["{LUMIERE_WORKSPACE}"]

[users.lumiere-room]
role = "desk"
spaces = ["{LUMIERE_SPACE}"]

[users.lumiere-viewer]
role = "viewer"
workspaces = ["{LUMIERE_WORKSPACE}"]

[users.group-viewer]
role = "viewer"
everywhere = true

[users.nobody]
role = "viewer"
spaces = []

[tokens.pms-lumiere]
role = "viewer"
workspaces = ["{LUMIERE_WORKSPACE}"]

[tokens.pms-lumiere-room]
role = "desk"
spaces = ["{LUMIERE_SPACE}"]

[tokens.pms-group]
role = "viewer"
everywhere = true
"""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    # Sees Hotel Lumière's guest, Harbour Inn's.
    sees_lumiere: bool
    sees_harbour: bool


USERS = (
    User("admin", "admin", True, True),  # not in ACCESS_FILE: an admin of everything
    User("lumiere-admin", "admin", True, False),
    User("lumiere-desk", "desk", True, False),
    User("lumiere-room", "desk", True, False),
    User("lumiere-viewer", "viewer", True, False),
    User("group-viewer", "viewer", True, True),
    User("nobody", "viewer", False, False),
)


@cache
def ops_users() -> str:
    password_hash = hash_password(PASSWORD)  # one hash for all: each costs 0.1 s
    return ",".join(f"{user.name}:{password_hash}" for user in USERS)


def access_env(folder: Path) -> dict[str, str]:
    """The console's settings for these users and tokens, with the templates (and their
    properties.toml naming both hotels) and ACCESS_FILE in `folder`."""
    templates = folder / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "properties.toml").write_text(PROPERTIES, encoding="utf-8")
    access = folder / "access.toml"
    access.write_text(ACCESS, encoding="utf-8")
    tokens = ",".join(f"{name}:{token}" for name, token in TOKENS.items())
    return {
        "OPS_USERS": ops_users(),
        "OPS_SESSION_SECRET": SESSION_SECRET,
        "API_TOKENS": f"{tokens},{BARE_TOKEN}",
        "ACCESS_FILE": str(access),
        "TEMPLATES_DIR": str(templates),
        "OPS_LOCKOUT_FAILURES": "3",
    }


@dataclass(frozen=True)
class Hotels:
    """The ids of each hotel's rows: a guest delivery and an open card flag."""

    lumiere_delivery: int
    lumiere_flag: int
    harbour_delivery: int
    harbour_flag: int


def two_hotels(services: Context, seam: SeamStandin) -> Hotels:
    ledger = services.ledger
    set_method(seam, CODE_ID, code=PIN)
    process_event(services, record(services, "access_method.issued.code"))
    process_event(services, record(services, "access_method.card_encoding_required"))
    [lumiere_delivery, _] = ledger.pending_delivery_ids(CODE_ID)
    [lumiere_flag] = [f for f in ledger_flags(services) if f[1] == CARD_ID]

    key = services.policy.search_key()
    harbour = About(
        access_grant_id="grant-harbour-1",
        user_identity_id="guest-harbour-1",
        guest_name=HARBOUR_GUEST,
        reservation=HARBOUR_RESERVATION,
        workspace_id=HARBOUR_WORKSPACE,
        space_ids=(HARBOUR_SPACE,),
    )
    harbour_delivery = 0
    for channel, address in (("sms", HARBOUR_PHONE), ("email", HARBOUR_EMAIL)):
        delivery_id, _ = ledger.plan_delivery(
            new_delivery(
                MessageKind.PIN_CODE,
                access_method_id=HARBOUR_METHOD,
                channel=channel,
                credential_fingerprint="f" * 40,
                event_id=None,
                about=harbour,
                destination=Destination.of(address, key),
            )
        )
        harbour_delivery = harbour_delivery or delivery_id
    harbour_flag, _ = ledger.open_flag(
        HARBOUR_CARD,
        reason="card_encoding_required",
        access_grant_id="grant-harbour-1",
        guest_name=HARBOUR_GUEST,
        event_id=None,
    )
    ledger.plan_delivery(
        new_delivery(
            MessageKind.FRONT_DESK_CARD,
            access_method_id=HARBOUR_CARD,
            channel="email",
            credential_fingerprint=f"flag-{harbour_flag}",
            event_id=None,
            about=harbour,
            destination=Destination.of("desk@harbour.example", key),
        )
    )
    return Hotels(lumiere_delivery, lumiere_flag[0], harbour_delivery, harbour_flag)


def ledger_flags(services: Context) -> list[tuple[int, str]]:
    """(id, access method) of every open flag."""
    with services.ledger.engine.connect() as connection:
        rows = connection.execute(
            select(FrontDeskFlag.id, FrontDeskFlag.access_method_id).where(
                FrontDeskFlag.status == FlagStatus.OPEN
            )
        ).all()
    return [(row.id, row.access_method_id) for row in rows]
