"""/api/v1 for a hotel's PMS: its OpenAPI 3.1 document is valid, names every route of the app
under /api/v1 and no other, and real answers match its schemas; a desk token resends a sent key
once per Idempotency-Key, audited under its name; /api keeps answering as before."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select
from starlette.testclient import TestClient

from app.context import Context
from app.delivery.send import send_delivery
from app.ledger.models import AuditEntry, utcnow
from app.ledger.outbox import HookTry, owe_cards, owe_delivery
from app.ledger.scope import EVERYWHERE
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.twilio import TwilioStandin
from app.web.main import create_app
from tests.console.test_scopes import sign_in_as, templated_routes
from tests.console.two_hotels import PIN, TOKENS, Hotels, access_env, two_hotels

DOC = "/api/v1/openapi.json"
DESK = TOKENS["pms-lumiere-room"]  # desk, Hotel Lumière's space
VIEWER = TOKENS["pms-group"]  # viewer, everywhere


@pytest.fixture
def hotels(services: Context, seam: SeamStandin) -> Hotels:
    return two_hotels(services, seam)


@pytest.fixture
def client(
    settings_env: dict[str, str], redis_url: str, tmp_path: Path, services: Context, hotels: Hotels
) -> Iterator[TestClient]:
    env = {**settings_env, "REDIS_URL": redis_url, **access_env(tmp_path)}
    with TestClient(create_app(load_settings(env), ledger=services.ledger)) as client:
        yield client


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _check(document: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """`body` is what the document says `path` answers with `status` (its schema, reached by a
    JSON pointer into the document, so its own `#/components/...` references resolve)."""
    uri = "urn:keycourier:api-v1"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    where = ("paths", path, method.lower(), "responses", str(status))
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:  # a shared response: components/responses/NAME
        where = tuple(response["$ref"].removeprefix("#/").split("/"))
    pointer = _pointer(*where, "content", "application/json", "schema")
    schema = {"$ref": f"{uri}#/{pointer}"}
    Draft202012Validator(schema, registry=registry).validate(body)


def test_the_document_is_valid_openapi_3_1_and_needs_no_token(client: TestClient) -> None:
    """The document is served without a token and passes openapi-spec-validator (3.1)."""
    answer = client.get(DOC)
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert set(document["webhooks"]) == {
        "delivery.sent", "delivery.delivered", "delivery.failed", "card.encoded", "key.revoked"
    }  # fmt: skip


def test_every_v1_route_is_in_the_document_and_nothing_else(client: TestClient) -> None:
    """The app's /api/v1 routes and the document's paths and methods are the same set."""
    document = client.get(DOC).json()
    in_app = {
        (method.lower(), path.removeprefix("/api/v1"))
        for method, path in templated_routes(list(client.app.routes))  # type: ignore[attr-defined]
        if path.startswith("/api/v1/")
    }
    in_document = {(method, path) for path, item in document["paths"].items() for method in item}
    assert in_app == in_document
    assert len(in_app) >= 8
    for path, item in document["paths"].items():
        for operation in item.values():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), path


def test_real_answers_match_the_documents_schemas(
    client: TestClient, hotels: Hotels, services: Context, twilio: TwilioStandin
) -> None:
    """Each read route's 200, the write routes' answers and a 401, 403 and 404 are what the
    document says, checked with jsonschema (2020-12)."""
    document = client.get(DOC).json()
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    desk = {"Authorization": f"Bearer {DESK}"}
    d, f = hotels.lumiere_delivery, hotels.lumiere_flag
    reads = [
        ("/deliveries", "/deliveries"),
        ("/deliveries?q=Alex", "/deliveries"),
        (f"/deliveries/{d}", "/deliveries/{delivery_id}"),
        ("/flags", "/flags"),
        ("/alerts", "/alerts"),
    ]
    for url, path in reads:
        answer = client.get(f"/api/v1{url}", headers=viewer)
        assert answer.status_code == 200, url
        _check(document, path, "GET", 200, answer.json())
    listed = client.get("/api/v1/deliveries", headers=viewer).json()["deliveries"]
    assert listed, "the check above validated an empty list only"

    answer = client.get(f"/api/v1/flags/{f}/encoders", headers=desk)
    assert answer.status_code == 200
    _check(document, "/flags/{flag_id}/encoders", "GET", 200, answer.json())
    encoders = answer.json()["encoders"]
    assert encoders
    answer = client.post(f"/api/v1/flags/{f}/encode", headers=desk,
                         json={"acs_encoder_id": encoders[0]["acs_encoder_id"]})  # fmt: skip
    assert answer.status_code == 200
    _check(document, "/flags/{flag_id}/encode", "POST", 200, answer.json())

    for status, url, headers in (
        (401, "/api/v1/flags", {}),
        (404, f"/api/v1/deliveries/{hotels.harbour_delivery}", desk),
    ):
        answer = client.get(url, headers=headers)
        assert answer.status_code == status
        path = url.removeprefix("/api/v1").replace(str(hotels.harbour_delivery), "{delivery_id}")
        _check(document, path, "GET", status, answer.json())
    refused = client.post(f"/api/v1/deliveries/{d}/resend", headers=viewer)
    assert refused.status_code == 403
    _check(document, "/deliveries/{delivery_id}/resend", "POST", 403, refused.json())


def test_a_desk_token_resends_a_sent_key_once_per_idempotency_key(
    client: TestClient, hotels: Hotels, services: Context, twilio: TwilioStandin
) -> None:
    """Once the guest's SMS went out, the PMS's resend is planned (202), and the same
    Idempotency-Key again plans nothing more (the same delivery, already_requested); a bad key
    is a 400; the audit log names the token, never its secret; /api has no write route."""
    send_delivery(services, hotels.lumiere_delivery)
    assert len(twilio.sent) == 1
    desk = {"Authorization": f"Bearer {DESK}", "Idempotency-Key": "pms-req-0001"}
    url = f"/api/v1/deliveries/{hotels.lumiere_delivery}/resend"
    first = client.post(url, headers=desk, json={"reason": "lost_message"})
    assert first.status_code == 202, first.text
    again = client.post(url, headers=desk, json={"reason": "lost_message"})
    assert again.status_code == 202
    assert first.json()["status"] == "queued"
    assert again.json()["status"] == "already_requested"
    assert again.json()["delivery_id"] == first.json()["delivery_id"]
    assert PIN not in first.text
    document = client.get(DOC).json()
    _check(document, "/deliveries/{delivery_id}/resend", "POST", 202, first.json())

    bad = client.post(url, headers={**desk, "Idempotency-Key": "no spaces"})
    assert bad.status_code == 400
    assert client.post(url, headers=desk, json={"reason": "free text"}).status_code == 400
    unversioned = client.post(f"/api/deliveries/{hotels.lumiere_delivery}/resend", headers=desk)
    assert unversioned.status_code in (404, 405)

    with services.ledger.engine.connect() as connection:
        entries = connection.execute(
            select(AuditEntry.actor, AuditEntry.outcome).where(AuditEntry.action == "resend")
        ).all()
    assert ("api:pms-lumiere-room", "queued") in entries
    assert ("api:pms-lumiere-room", "already_requested") in entries
    assert not any(DESK in actor for actor, _ in entries)


def test_the_webhooks_page_lists_each_try_for_the_admins_hotels_only(
    client: TestClient, services: Context, hotels: Hotels
) -> None:
    """/ops/webhooks: Lumière's delivery.sent and Harbour Inn's card.encoded, each with its try
    (the PMS's 503); an admin of everything sees both hotels', Lumière's admin only Lumière's,
    and a desk user may not open it."""
    ledger = services.ledger
    send_delivery(services, hotels.lumiere_delivery)  # the guest's SMS goes out
    now = utcnow()
    with ledger.engine.begin() as connection:  # what the send and an encode record, when on
        owe_delivery(connection, hotels.lumiere_delivery, now)
        owe_cards(connection, [hotels.harbour_flag], now)
    hooks = ledger.recent_status_webhooks(EVERYWHERE)
    assert len(hooks) == 2
    for hook, _ in hooks:
        claimed = ledger.claim_status_webhook(hook.id, timedelta(seconds=30))
        assert claimed is not None
        ledger.finish_status_webhook(
            claimed, HookTry(503, None, 12), retry_at=now + timedelta(hours=1)
        )

    sign_in_as(client, "admin")
    page = client.get("/ops/webhooks").text
    assert f"delivery {hotels.lumiere_delivery}</a>" in page
    assert f"card {hotels.harbour_flag}" in page
    assert page.count("HTTP 503") == 2
    assert "delivery.sent" in page
    assert "card.encoded" in page

    sign_in_as(client, "lumiere-admin")
    page = client.get("/ops/webhooks").text
    assert f"delivery {hotels.lumiere_delivery}</a>" in page
    assert f"card {hotels.harbour_flag}" not in page
    assert page.count("HTTP 503") == 1

    sign_in_as(client, "lumiere-desk")
    assert client.get("/ops/webhooks").status_code == 403
