"""The API's write endpoints (/api/v1 only), for a hotel's PMS: send a guest's key again, and
encode a key card (with the encoders to choose from).

    POST /api/v1/deliveries/{id}/resend   {"reason"?, "channel"?}  Idempotency-Key header
    GET  /api/v1/flags/{id}/encoders
    POST /api/v1/flags/{id}/encode        {"acs_encoder_id"}

They do what the console's resend and encode actions do (app/delivery/resend.py,
app/delivery/encoding.py, with the workspace's Seam client) and are audited the same way under
`api:<token name>`. A token needs a role with the permission (ACCESS_FILE: desk or admin;
a viewer gets 403), and a token ACCESS_FILE does not name only reads (console.access). An id
outside the token's scope is a 404, as everywhere.

Idempotency: a resend with an `Idempotency-Key` (letters, digits, dashes, at most 40) plans
one message however often it is repeated (the later answers say `already_requested`); the
ledger also refuses a second resend while one is on its way (409 `still_sending`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any, get_args

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.console.actions import (
    ContextFactory,
    Queue,
    card_action,
    card_context,
    card_encoders,
    card_flag,
)
from app.console.context import Console, Endpoint
from app.delivery.encoding import EncodeResult, encode_card
from app.delivery.resend import REASONS
from app.delivery.resend import resend as resend_delivery
from app.errors import BrokerUnavailable, ConfigError, KeycourierError, NotFound, ProviderError
from app.ledger.models import FlagStatus
from app.settings import Channel

MAX_BODY = 16 * 1024
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9-]{1,40}")
# A refusal of resend, as an HTTP status: the request was wrong (400), or the guest's key
# cannot be sent now (409).
BAD_REQUEST = {"unknown_reason", "bad_request_id", "bad_channel"}


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(413, "the request body is too large")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the request body is a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise HTTPException(400, f"{name} is a string")
    return value


def resend(console: Console, context_of: ContextFactory, queue: Queue) -> Endpoint:
    async def post(request: Request) -> Response:
        delivery_id = console.row_id(request, "delivery_id")
        body = await _json_body(request)
        reason = _text(body, "reason") or "not_received"
        channel = _text(body, "channel")
        if reason not in REASONS:
            raise HTTPException(400, f"reason is one of: {', '.join(REASONS)}")
        if channel is not None and channel not in get_args(Channel):
            raise HTTPException(400, f"channel is one of: {', '.join(get_args(Channel))}")
        key = request.headers.get("idempotency-key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise HTTPException(400, "Idempotency-Key is letters, digits and dashes (at most 40)")
        if not await console.run(console.store.sees_delivery, delivery_id, console.scope(request)):
            raise HTTPException(404, f"there is no delivery {delivery_id}")
        actor = console.actor(request)
        target = f"delivery {delivery_id}"
        try:
            result = await console.run(
                resend_delivery, context_of(), delivery_id, actor=actor, reason=reason,
                request_id=key, channel=channel,
            )  # fmt: skip
        except (ProviderError, KeycourierError) as exc:
            await console.audit(actor, "resend", target, "error", str(exc))
            return JSONResponse(
                {"error": "unavailable", "message": "Seam or the ledger could not be reached: "
                                                    "try again"},
                status_code=503, headers={"Retry-After": "30"},
            )  # fmt: skip
        # A broker that is down loses nothing: it is planned in the ledger, and the sweeper
        # hands it on when the broker is back.
        with contextlib.suppress(BrokerUnavailable):
            await console.run(queue, result.next)
        detail = result.message
        if result.delivery_id is not None:
            detail += f" (delivery {result.delivery_id}, reason {reason})"
        await console.audit(actor, "resend", target, result.refusal or result.status, detail)
        if result.status == "refused":
            code = result.refusal or "refused"
            status = 404 if code == "not_found" else 400 if code in BAD_REQUEST else 409
            return JSONResponse({"error": code, "message": result.message}, status_code=status)
        return JSONResponse(
            {
                "status": result.status,
                "original_delivery_id": delivery_id,
                "delivery_id": result.delivery_id,
                "channel": result.channel,
                "destination": result.destination_masked,
                "credential_changed": result.credential_changed,
                "message": result.message,
            },
            status_code=202,
        )

    return post


def encoders(console: Console, context_of: ContextFactory) -> Endpoint:
    async def get(request: Request) -> Response:
        flag = await card_flag(console, request)
        if flag.status != FlagStatus.OPEN:
            return JSONResponse({"encoders": []})
        try:
            found: Sequence[Any] = await console.run(card_encoders, context_of, flag)
        except NotFound:
            raise HTTPException(409, "Seam no longer has this key: nothing to encode") from None
        except ConfigError as exc:  # no key for the card's workspace: a setting to fix
            raise HTTPException(409, f"Seam was not asked: {exc}") from None
        except KeycourierError:
            return JSONResponse({"error": "unavailable", "message": "Seam could not be reached"},
                                status_code=503, headers={"Retry-After": "30"})  # fmt: skip
        return JSONResponse(
            {
                "encoders": [
                    {"acs_encoder_id": e.acs_encoder_id, "display_name": e.display_name,
                     "acs_system_id": e.acs_system_id, "is_online": e.is_online}
                    for e in found
                ]
            }
        )  # fmt: skip

    return get


def encode(console: Console, context_of: ContextFactory) -> Endpoint:
    async def post(request: Request) -> Response:
        flag = await card_flag(console, request)
        body = await _json_body(request)
        encoder_id = (_text(body, "acs_encoder_id") or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", encoder_id):
            raise HTTPException(400, "acs_encoder_id names one of the flag's encoders")
        actor = console.actor(request)

        def call() -> EncodeResult:
            context = card_context(context_of, flag)
            return encode_card(
                context.seam, context.ledger, flag.access_method_id, encoder_id, actor=actor
            )

        _, result = await card_action(console, actor, "encode", f"card {flag.id}", call)
        if result is None:
            return JSONResponse({"error": "unavailable", "message": "Seam could not be reached"},
                                status_code=503, headers={"Retry-After": "30"})  # fmt: skip
        assert isinstance(result, EncodeResult)
        return JSONResponse(
            {
                "flag_id": flag.id,
                "status": result.status,
                "access_method_id": result.access_method_id,
                "acs_encoder_id": result.acs_encoder_id,
                "action_attempt_id": result.action_attempt_id,
                "error_type": result.error_type,
                "message": result.message,
            }
        )

    return post
