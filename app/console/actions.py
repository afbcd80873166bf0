"""The console's actions on Seam and the guest: encode a key card at an encoder
(app/encoding.py) and resend a delivery (app/resend.py). Each is written to the audit log and
then redirected to the page it was done from, which shows the result from that audit entry
(`?result=ID`), so a reload never repeats the action."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.console.context import Console, Endpoint
from app.container import Services
from app.encoding import encode_card, list_encoders
from app.errors import KeycourierError, NotFound, ProviderError
from app.ledger.models import FlagStatus, FrontDeskFlag
from app.processing import EnqueueSend
from app.resend import resend as resend_delivery

ServicesFactory = Callable[[], Services]


async def _flag(console: Console, request: Request) -> FrontDeskFlag:
    flag_id = request.path_params["flag_id"]
    flag = await console.run(console.store.get_flag, flag_id)
    if flag is None:
        raise HTTPException(404, f"there is no card flag {flag_id}")
    return flag


def card(console: Console, services: ServicesFactory) -> Endpoint:
    async def page(request: Request) -> Response:
        flag = await _flag(console, request)
        encoders, encoders_error = [], None
        if flag.status == FlagStatus.OPEN:
            try:
                encoders = await console.run(list_encoders, services(), flag.access_method_id)
            except NotFound:
                encoders_error = "Seam no longer has this key: nothing to encode."
            except (ProviderError, KeycourierError) as exc:
                encoders_error = f"Seam's encoders could not be listed: {exc}"
        else:
            encoders_error = "This card is no longer waiting: it was encoded or cancelled."
        result = None
        if "result" in request.query_params:
            result = await console.audit_result(request, f"card {flag.id}")
        return console.render(
            request,
            "card.html",
            {"flag": flag, "encoders": encoders, "encoders_error": encoders_error,
             "result": result},
        )  # fmt: skip

    return page


def encode(console: Console, services: ServicesFactory) -> Endpoint:
    async def post(request: Request) -> Response:
        form = await console.form(request)
        flag = await _flag(console, request)
        encoder_id = str(form.get("acs_encoder_id", "")).strip()[:100]
        actor = console.actor(request)
        target = f"card {flag.id}"
        if not encoder_id:
            raise HTTPException(400, "choose an encoder")
        try:
            result = await console.run(
                encode_card, services(), flag.access_method_id, encoder_id, actor=actor
            )
        except (ProviderError, KeycourierError) as exc:
            entry = await console.audit(actor, "encode", target, "error",
                                        f"Seam could not be reached: {exc}")  # fmt: skip
        else:
            outcome = result.error_type if result.status == "error" else result.status
            detail = f"{result.message} (encoder {encoder_id}"
            if result.action_attempt_id:
                detail += f", action attempt {result.action_attempt_id}"
            detail += ")"
            entry = await console.audit(actor, "encode", target, outcome or "error", detail)
        return console.redirect(f"/ops/cards/{flag.id}?result={entry}")

    return post


def resend(console: Console, services: ServicesFactory, enqueue: EnqueueSend) -> Endpoint:
    async def post(request: Request) -> Response:
        form = await console.form(request)
        delivery_id = request.path_params["delivery_id"]
        actor = console.actor(request)
        target = f"delivery {delivery_id}"
        reason = str(form.get("reason", "not_received"))
        channel = str(form.get("channel", "")) or None
        request_id = str(form.get("request_id", "")) or None
        try:
            result = await console.run(
                resend_delivery,
                services(),
                delivery_id,
                actor=actor,
                enqueue=enqueue,
                reason=reason,
                request_id=request_id,
                channel=channel,
            )
        except (ProviderError, KeycourierError) as exc:
            entry = await console.audit(actor, "resend", target, "error", str(exc))
        else:
            detail = result.message
            if result.delivery_id is not None:
                detail += f" (delivery {result.delivery_id}, reason {reason})"
            entry = await console.audit(
                actor, "resend", target, result.refusal or result.status, detail
            )
        return console.redirect(f"/ops/deliveries/{delivery_id}?result={entry}")

    return post
