"""Reconcile across a hotel group: each workspace of SEAM_WORKSPACES_FILE listed with its own
key, and each event it finds filed under that workspace, so a worker reads it with that key."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from app.context import Context
from app.intake.reconcile import reconcile_all
from app.ledger.models import utcnow
from app.ledger.store import Ledger
from app.settings import load_settings
from app.standins.seam import SAMPLES, SeamStandin
from tests.conftest import TEMPLATES
from tests.queueing import RecordingEnqueuer

HOTEL_A, HOTEL_B = "hotel-a", "661025d3-c1d2-403c-83a8-af153aaedfbc"
KEY_A, KEY_B = "seam_key_hotel_a", "seam_key_hotel_b"
WORKSPACES = "".join(
    f'[workspaces."{ws}"]\nname = "{name}"\napi_key_env = "KEY_{name}"\n'
    f'webhook_secret_env = "SECRET_{name}"\n'
    for ws, name in ((HOTEL_A, "A"), (HOTEL_B, "B"))
)


def group_context(seam: SeamStandin, ledger: Ledger, tmp_path: Path) -> Context:
    seam.add_workspace(HOTEL_A, KEY_A)
    seam.add_workspace(HOTEL_B, KEY_B)
    (tmp_path / "workspaces.toml").write_text(WORKSPACES)
    env = {
        "SEAM_WORKSPACES_FILE": str(tmp_path / "workspaces.toml"),
        "SEAM_ENDPOINT": seam.url,
        "KEY_A": KEY_A,
        "KEY_B": KEY_B,
        "CREDENTIAL_HASH_KEY": "group-fingerprint-key-0123456789",
        "TEMPLATES_DIR": str(TEMPLATES),
    }
    return Context.from_settings(load_settings(env, require=("SEAM_API_KEY",)), ledger)


def recent(sample: str, **changes: object) -> dict[str, object]:
    event = json.loads((SAMPLES / "events" / f"{sample}.json").read_text())
    now = utcnow().isoformat().replace("+00:00", "Z")
    return {**event, "created_at": now, "occurred_at": now, **changes}


def test_every_workspace_is_listed_with_its_own_key(
    seam: SeamStandin, ledger: Ledger, tmp_path: Path
) -> None:
    """Reconcile asks Seam once per workspace, each with that workspace's key, and records the
    event only B's key can see under workspace B."""
    ctx = group_context(seam, ledger, tmp_path)
    seam.put_event(recent("access_method.issued.code"))  # hotel B's
    enqueuer = RecordingEnqueuer()

    found = reconcile_all(ctx.ledger, ctx.seam.each(), enqueuer, utcnow() - timedelta(hours=1))

    assert (found.listed, found.recorded) == (1, 1)
    assert seam.requests_with_key(KEY_A, "/events/list")
    assert seam.requests_with_key(KEY_B, "/events/list")
    [event_id] = enqueuer.events
    recorded = ledger.get_event(event_id)
    assert recorded is not None
    assert recorded.workspace_id == HOTEL_B


def test_an_event_seam_lists_without_a_workspace_is_filed_under_the_one_listing_it(
    seam: SeamStandin, ledger: Ledger, tmp_path: Path
) -> None:
    """An event summary with no workspace_id is recorded under the workspace whose key listed
    it first (the file's order), so processing reads it with a key that can see it."""
    ctx = group_context(seam, ledger, tmp_path)
    event = recent("access_method.issued.code", event_id="no-workspace-event")
    event.pop("workspace_id")
    seam.put_event(event)
    enqueuer = RecordingEnqueuer()

    reconcile_all(ctx.ledger, ctx.seam.each(), enqueuer, utcnow() - timedelta(hours=1))

    [event_id] = enqueuer.events
    recorded = ledger.get_event(event_id)
    assert recorded is not None
    assert recorded.workspace_id == HOTEL_A
