"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json (no token needed: it
describes, it holds nothing). Every route of /api/v1 is in it and nothing else
(tests/console/test_openapi.py checks both ways, validates the document, and checks real
answers against its schemas). Its `webhooks` section describes the status webhooks sent to
STATUS_WEBHOOK_URL (app/outbound/payloads.py)."""

from __future__ import annotations

from typing import Any, get_args

from app.delivery.resend import REASONS
from app.ledger.models import DeliveryStatus
from app.ledger.outbox import HookEvent
from app.settings import Channel

VERSION = "1.0.0"
CHANNELS = list(get_args(Channel))
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}


def _null(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


ID_PARAMETER = {
    "delivery_id": {"name": "delivery_id", "in": "path", "required": True,
                    "schema": {"type": "integer", "minimum": 1}},
    "flag_id": {"name": "flag_id", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 1}},
}  # fmt: skip
READ_ERRORS = {"401": {"$ref": "#/components/responses/Unauthorized"}}
ONE_ERRORS = {**READ_ERRORS, "404": _error("No such record in the token's scope")}
WRITE_ERRORS = {
    **ONE_ERRORS,
    "400": _error("The request is not right (the error says what)"),
    "403": _error("The token's role may not do this (ACCESS_FILE: desk or admin)"),
    "503": _error("Seam or the ledger could not be reached: try again (Retry-After)"),
}

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": STR, "message": STR}, optional=("message",)),
    "Delivery": _object(
        {
            "id": INT, "hotel": _null(STR), "workspace_id": _null(STR),
            "space_ids": {"type": "array", "items": STR}, "kind": STR,
            "channel": {"enum": CHANNELS},
            "status": {"enum": [status.value for status in DeliveryStatus]},
            "guest_name": _null(STR), "reservation": _null(STR),
            "destination": _null(STR), "planned_destination": _null(STR),
            "access_method_id": STR, "access_grant_id": _null(STR), "error_code": _null(STR),
            "error_message": _null(STR), "attempts": INT, "fallback_for_id": _null(INT),
            "created_at": _null(TIME), "updated_at": _null(TIME), "sent_at": _null(TIME),
        }
    ),
    "TimelineEntry": _object(
        {"at": _null(TIME), "source": STR, "what": STR, "status": STR, "detail": _null(STR)}
    ),
    "Flag": _object(
        {
            "id": INT, "access_method_id": STR, "access_grant_id": _null(STR),
            "guest_name": _null(STR), "reason": STR, "status": {"enum": ["open", "closed"]},
            "opened_at": TIME,
        }
    ),
    "EventSetAside": _object(
        {
            "id": INT, "seam_event_id": _null(STR), "event_type": _null(STR),
            "access_method_id": _null(STR), "attempts": INT, "reason": _null(STR),
            "set_aside_at": _null(TIME),
        }
    ),
    "ResendRequest": {
        "type": "object",
        "properties": {
            "reason": {"enum": list(REASONS), "default": "not_received"},
            "channel": {"anyOf": [{"enum": CHANNELS}, {"type": "null"}],
                        "description": "default: the original delivery's"},
        },
    },
    "ResendAccepted": _object(
        {
            "status": {"enum": ["queued", "already_requested"]},
            "original_delivery_id": INT, "delivery_id": INT, "channel": STR,
            "destination": _null(STR), "credential_changed": BOOL, "message": STR,
        }
    ),
    "EncodeRequest": _object({"acs_encoder_id": STR}),
    "EncodeResult": _object(
        {
            "flag_id": INT, "status": {"enum": ["success", "error", "pending"]},
            "access_method_id": STR, "acs_encoder_id": _null(STR),
            "action_attempt_id": _null(STR), "error_type": _null(STR), "message": STR,
        }
    ),
    "Encoder": _object(
        {"acs_encoder_id": STR, "display_name": STR, "acs_system_id": _null(STR),
         "is_online": BOOL}
    ),
}  # fmt: skip

_WHERE = {
    "access_method_id": STR, "access_grant_id": _null(STR), "workspace_id": _null(STR),
    "space_ids": {"type": "array", "items": STR}, "reservation": _null(STR),
}  # fmt: skip
_DATA = {
    "delivery": _object(
        {
            **_WHERE, "delivery_id": INT, "status": STR, "kind": STR,
            "channel": {"enum": CHANNELS}, "recipient": _null(STR),
            "error_code": _null(STR),
        }
    ),
    "card": _object({**_WHERE, "flag_id": INT}),
    "key": _object({**_WHERE, "final": BOOL, "seam_event_type": STR}),
}  # fmt: skip
WEBHOOKS = {
    HookEvent.DELIVERY_SENT: ("delivery", "The provider (Twilio, SendGrid) accepted a guest's "
                              "key message (PIN code or Instant Key)."),
    HookEvent.DELIVERY_DELIVERED: ("delivery", "The provider reports the key message reached "
                                   "the guest's phone or mailbox."),
    HookEvent.DELIVERY_FAILED: ("delivery", "The key message failed for good (status failed) "
                                "or the provider gave up after accepting it (undelivered); "
                                "keycourier falls back to the other channel, then the front "
                                "desk."),
    HookEvent.CARD_ENCODED: ("card", "A guest's plastic key card was encoded (its front-desk "
                             "flag closed)."),
    HookEvent.KEY_REVOKED: ("key", "Seam revoked the guest's access method: `final` false "
                            "while Seam re-programs it (a new key follows), true when it was "
                            "deleted."),
}  # fmt: skip


def webhook_schema(event: HookEvent) -> dict[str, Any]:
    """The JSON Schema of one webhook type's body (components/schemas/Webhook_...)."""
    data, _ = WEBHOOKS[event]
    return _object({"type": {"const": event.value}, "timestamp": TIME, "data": _DATA[data]})


def _webhooks() -> dict[str, Any]:
    headers = {
        name: {"required": True, "schema": STR, "description": text}
        for name, text in (
            ("webhook-id", "The message's id: the same on every retry (drop repeats by it)"),
            ("webhook-timestamp", "Unix seconds when this try was signed"),
            ("webhook-signature", "v1,<base64 HMAC-SHA256 of id.timestamp.body with the "
                                  "secret STATUS_WEBHOOK_SECRET>"),
        )
    }  # fmt: skip
    return {
        event.value: {
            "post": {
                "summary": event.value,
                "description": text + " Signed the Standard Webhooks way; retried with "
                "exponential backoff until a 2xx answer.",
                "parameters": [{"name": n, "in": "header", **h} for n, h in headers.items()],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref(f"Webhook_{event.value.replace('.', '_')}")
                        }
                    },
                },
                "responses": {"200": {"description": "Any 2xx: received"}},
            }
        }
        for event, (_, text) in WEBHOOKS.items()
    }


def _op(summary: str, responses: dict[str, Any], *, parameters: list[Any] | None = None,
        body: str | None = None, tag: str = "read") -> dict[str, Any]:  # fmt: skip
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": _ref(body)}}}  # fmt: skip
    return op


def _query(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


def _paths() -> dict[str, Any]:
    deliveries = {"type": "array", "items": _ref("Delivery")}
    flags = {"type": "array", "items": _ref("Flag")}
    return {
        "/deliveries": {"get": _op(
            "Deliveries, newest first: search and filter",
            {"200": _json(_object({"deliveries": deliveries, "page": INT,
                                   "next_page": _null(INT)}), "A page of deliveries"),
             "400": _error("A filter is not right"), **READ_ERRORS},
            parameters=[
                _query("q", STR, "guest name, reservation, phone number or email address"),
                _query("status", {"enum": [s.value for s in DeliveryStatus]}, "status"),
                _query("channel", {"enum": CHANNELS}, "channel"),
                _query("hotel", STR, "a hotel's name in properties.toml"),
                _query("page", {"type": "integer", "minimum": 1}, "page (from 1)"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "per page"),
            ],
        )},
        "/deliveries/{delivery_id}": {"get": _op(
            "One delivery with its timeline",
            {"200": _json({"allOf": [_ref("Delivery"), _object(
                {"timeline": {"type": "array", "items": _ref("TimelineEntry")}})]},
                "The delivery"), **ONE_ERRORS},
            parameters=[ID_PARAMETER["delivery_id"]],
        )},
        "/deliveries/{delivery_id}/resend": {"post": _op(
            "Send the guest's current key again (re-read from Seam now)",
            {"202": _json(_ref("ResendAccepted"), "Planned (or already asked for with this "
                          "Idempotency-Key); a worker sends it"),
             "409": _error("It cannot be sent now (the error code says why: not_issued, "
                           "still_sending, no_destination...)"), **WRITE_ERRORS},
            parameters=[ID_PARAMETER["delivery_id"],
                        {"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,40}$"},
                         "description": "The same key twice plans one message"}],
            body="ResendRequest", tag="write",
        )},
        "/flags": {"get": _op(
            "Open front-desk flags (the card queue)",
            {"200": _json(_object({"flags": flags}), "The open flags"), **READ_ERRORS},
        )},
        "/flags/{flag_id}/encoders": {"get": _op(
            "The encoders the flag's card can be encoded at, online ones first",
            {"200": _json(_object({"encoders": {"type": "array", "items": _ref("Encoder")}}),
                          "The encoders (none once the flag is closed)"),
             "409": _error("Seam no longer has this key"), **WRITE_ERRORS},
            parameters=[ID_PARAMETER["flag_id"]], tag="write",
        )},
        "/flags/{flag_id}/encode": {"post": _op(
            "Encode the flag's key card at an encoder (waits up to 10 s for it)",
            {"200": _json(_ref("EncodeResult"), "What the encoder did: success, error (with "
                          "error_type and what to do), or pending (check the card again)"),
             **WRITE_ERRORS},
            parameters=[ID_PARAMETER["flag_id"]], body="EncodeRequest", tag="write",
        )},
        "/alerts": {"get": _op(
            "Deliveries that reached nobody, open flags, events set aside",
            {"200": _json(_object({
                "deliveries": deliveries, "flags": flags,
                "events_set_aside": {"type": "array", "items": _ref("EventSetAside")}}),
                "The alerts"), **READ_ERRORS},
        )},
        "/openapi.json": {"get": {
            "summary": "This document", "tags": ["meta"], "security": [],
            "responses": {"200": {"description": "The OpenAPI document",
                                  "content": {"application/json": {"schema": {}}}}},
        }},
    }  # fmt: skip


def document(server: str = "/api/v1") -> dict[str, Any]:
    schemas = dict(SCHEMAS)
    for event in WEBHOOKS:
        schemas[f"Webhook_{event.value.replace('.', '_')}"] = webhook_schema(event)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "keycourier API",
            "version": VERSION,
            "description": "Delivery status and the guest's key for a hotel's PMS: read "
            "deliveries and card flags, send a key again, encode a key card. Every route but "
            "this document needs `Authorization: Bearer <token>` (API_TOKENS); what a token "
            "may do and whose guests it sees is in ACCESS_FILE. Status webhooks (below) go "
            "to STATUS_WEBHOOK_URL.",
        },
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "tags": [{"name": "read"}, {"name": "write"}, {"name": "meta"}],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Unauthorized": _error("No token, or not one of API_TOKENS")},
            "schemas": schemas,
        },
    }
