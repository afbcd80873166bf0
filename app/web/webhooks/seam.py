"""POST /webhooks/seam (and /webhooks/seam/<workspace_id>): verify with Svix, record in the
ledger, enqueue, answer.

What each answer means to Svix:
- 4xx: not from Seam (unsigned, forged, stale, malformed headers), too large, or, at a
  workspace's URL, an event of another workspace. Svix does not retry a 4xx the way it
  retries a 5xx; nothing is recorded but a log line.
- 2xx: recorded (and queued when there is work). Duplicates, unreadable-but-signed bodies and
  event types keycourier does not act on are 2xx too, so Seam stops retrying them.
- 503: the ledger or the broker is unreachable; Svix retries later with the same svix-id.

The ledger write and the broker publish are blocking calls: the ingest writer thread makes them
(app/intake/ingest.py), for many requests at once, while the event loop keeps serving.
"""

from __future__ import annotations

import binascii
import json
import logging
from typing import Any, TypeGuard

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.errors import BrokerUnavailable, LedgerUnavailable
from app.events.kinds import Action, action_for, is_about_a_grant
from app.intake.ingest import EventWriter
from app.ledger.models import EventStatus
from app.ledger.store import NewEvent
from app.observability import metrics
from app.web.webhooks.body import read_or_refuse
from app.web.webhooks.svix_verify import Webhook, WebhookVerificationError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
# The ledger's columns for Seam's ids (events.seam_event_id, workspace_id, ...) and for the
# event's time (occurred_at, an ISO 8601 text).
MAX_ID = 100
MAX_OCCURRED_AT = 40


class SeamWebhookEndpoint:
    """One webhook's endpoint. With `workspace_id` (a workspace of SEAM_WORKSPACES_FILE), an
    event must also name that workspace."""

    def __init__(self, secret: str, writer: EventWriter, workspace_id: str | None = None) -> None:
        self._webhook = Webhook(secret)
        self._writer = writer
        self._workspace_id = workspace_id

    async def handle(self, request: Request) -> Response:
        body = await read_or_refuse(request, MAX_BODY_BYTES, _answer)
        if isinstance(body, JSONResponse):
            return body

        svix_id = request.headers.get("svix-id")
        try:
            payload = self._webhook.verify(body, dict(request.headers))
        except (json.JSONDecodeError, RecursionError):
            # Raised only after the signature matched (svix parses once it has verified): Seam
            # sent it, nobody can read it (not JSON, or nested deeper than the parser goes).
            payload = None
        except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
            log.warning("seam webhook refused: signature check failed (%s)", type(exc).__name__)
            return _answer(400, "invalid_signature")
        if (
            self._workspace_id is not None
            and isinstance(payload, dict)
            and payload.get("workspace_id") != self._workspace_id
        ):
            # Signed with this workspace's secret, about another: a misrouted webhook. Its
            # reads would go to the wrong workspace's key, so it is not taken in.
            log.warning("seam webhook refused: the event names another workspace than its URL")
            return _answer(400, "wrong_workspace")

        new_event = _read_event(svix_id, payload)
        try:
            recorded = await self._writer.record(new_event)
        except (LedgerUnavailable, BrokerUnavailable) as exc:
            log.error("seam webhook deferred (503): %s", exc)
            return _answer(503, "unavailable", event_type=new_event.event_type)

        outcome = "duplicate" if recorded.duplicate else new_event.status.value
        log.debug(
            "seam webhook %s",
            outcome,
            extra={"event_id": recorded.event_id, "event_type": new_event.event_type},
        )
        return _answer(200, outcome, event_type=new_event.event_type, event=recorded.event_id)


def _read_event(svix_id: str | None, payload: Any) -> NewEvent:
    """The ledger's view of a verified payload. The event's `code` is never kept."""
    if not isinstance(payload, dict):
        return NewEvent(
            svix_id, None, None, status=EventStatus.REJECTED, detail="not a JSON object"
        )
    svix_id = svix_id if _fits(svix_id) else None  # a signed but odd id: dedupe by Seam's
    event_id, event_type = payload.get("event_id"), payload.get("event_type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
        return NewEvent(
            svix_id,
            event_id if _fits(event_id) and event_id else None,
            event_type if _fits(event_type) else None,
            status=EventStatus.REJECTED,
            detail="event_id or event_type missing",
        )
    unfit = [
        key
        for key in ("event_id", "event_type", "workspace_id", "access_method_id")
        if key in payload and payload[key] is not None and not _fits(payload[key])
    ]
    if unfit:
        # Signed by Seam, yet not what its ids are: recorded as such (no value kept, a row the
        # ledger can always store), so it neither blocks the events written with it nor
        # comes back.
        return NewEvent(
            svix_id,
            None,
            event_type if _fits(event_type) else None,
            status=EventStatus.REJECTED,
            detail=f"malformed {', '.join(unfit)}: not a Seam id (too long or control characters)",
        )
    grant_ids = payload.get("access_grant_ids")
    if grant_ids is None and isinstance(payload.get("access_grant_id"), str):
        grant_ids = [payload["access_grant_id"]]  # access_grant.* events name one grant
    access_method_id = payload.get("access_method_id")
    action = action_for(event_type)
    if is_about_a_grant(action):
        actionable = isinstance(grant_ids, list) and any(_fits(g) for g in grant_ids)
    else:
        actionable = action is not Action.RECORD and isinstance(access_method_id, str)
    return NewEvent(
        svix_id=svix_id,
        seam_event_id=event_id,
        event_type=event_type,
        workspace_id=_str_or_none(payload.get("workspace_id")),
        access_method_id=_str_or_none(access_method_id),
        access_grant_ids=tuple(g for g in grant_ids if _fits(g))
        if isinstance(grant_ids, list)
        else (),
        is_backup_code=payload.get("is_backup_code") is True,
        occurred_at=_fitted(payload.get("occurred_at"), MAX_OCCURRED_AT),
        status=EventStatus.RECEIVED if actionable else EventStatus.IGNORED,
        detail=None if actionable else f"no action for {event_type}",
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _fits(value: object, limit: int = MAX_ID) -> TypeGuard[str]:
    """Whether `value` is text the ledger keeps as an id: at most `limit` characters, none of
    them a control character (PostgreSQL refuses a NUL; the console shows the rest)."""
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def _fitted(value: object, limit: int) -> str | None:
    """`value` when it fits, else None: for what the ledger keeps only to show (a time)."""
    return value if _fits(value, limit) else None


def _answer(
    status: int, outcome: str, event_type: str | None = None, **extra: object
) -> JSONResponse:
    metrics.webhook_answered(event_type, outcome)
    return JSONResponse({"outcome": outcome, **extra}, status_code=status)
