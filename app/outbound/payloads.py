"""What a status webhook says: `{"type", "timestamp", "data"}` (the Standard Webhooks shape),
from the outbox row's snapshot. Ids, statuses, times and the masked recipient only: the ledger
holds no PIN or Instant Key URL, so none can be put here. The OpenAPI document's `webhooks`
section (app/console/openapi.py) describes each type; the tests check one against the other."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.ledger.outbox import HookEvent, StatusWebhook


def payload(hook: StatusWebhook) -> dict[str, Any]:
    data: dict[str, Any] = {
        "access_method_id": hook.access_method_id,
        "access_grant_id": hook.access_grant_id,
        "workspace_id": hook.workspace_id,
        "space_ids": list(hook.space_id_list),
        "reservation": hook.reservation,
    }
    event = HookEvent(hook.event_type)
    if event is HookEvent.CARD_ENCODED:
        data["flag_id"] = hook.flag_id
    elif event is HookEvent.KEY_REVOKED:
        # Seam's access_method.revoked is temporary (it re-programs the key: a new one follows);
        # access_method.deleted is final.
        data["final"] = hook.status == "access_method.deleted"
        data["seam_event_type"] = hook.status
    else:
        data |= {
            "delivery_id": hook.delivery_id,
            "status": hook.status,
            "kind": hook.kind,
            "channel": hook.channel,
            "recipient": hook.recipient_masked,
            "error_code": hook.error_code,
        }
    return {"type": event.value, "timestamp": _iso(hook.occurred_at), "data": data}


def body(hook: StatusWebhook) -> str:
    """The exact text POSTed (and signed): the same on every try."""
    return json.dumps(payload(hook), separators=(",", ":"), sort_keys=True)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
