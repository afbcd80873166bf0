"""Who looked at which guest (item 4) and each delivery's hotel (item 5): the audit log records
every search (the phone number or email masked, with a prefix of its keyed hash) and every
delivery read, in the console and the API; the ledger keeps each delivery's Seam workspace and
spaces, and the console and the API show and filter by the hotel properties.toml names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.console.hotels import Hotels as HotelMap
from app.context import Context
from app.delivery.planned import About, Destination, new_delivery
from app.ledger.console import ConsoleStore, DeliveryQuery
from app.ledger.models import AuditEntry, Delivery
from app.ledger.scope import EVERYWHERE, Scope
from app.messages.kinds import MessageKind
from app.messages.properties import parse_properties
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.web.main import create_app
from tests.console.test_scopes import sign_in_as
from tests.console.two_hotels import (
    HARBOUR_WORKSPACE,
    LUMIERE_SPACE,
    LUMIERE_WORKSPACE,
    TOKENS,
    Hotels,
    access_env,
    two_hotels,
)
from tests.events.test_pipeline import CODE_ID

PHONE = "+15555550123"  # Alex Rivera's, in the Seam stand-in's samples
EMAIL = "alex.rivera@example.com"


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


def audit(services: Context) -> list[AuditEntry]:
    with services.ledger.engine.connect() as connection:
        rows = connection.execute(select(AuditEntry).order_by(AuditEntry.id)).all()
    return [AuditEntry(**row._mapping) for row in rows]


def test_searches_and_delivery_reads_are_audited_without_the_address(
    client: TestClient, services: Context, hotels: Hotels
) -> None:
    """A desk user's searches by phone, email and name, and the deliveries they open (one out
    of their scope: not_found), and an API token's search and read, are each in the audit
    log, with who, what and which deliveries; never the phone number or email in full."""
    sign_in_as(client, "lumiere-desk")
    client.get("/ops/")  # browsing, no search: names no one
    client.get("/ops/", params={"q": "+1 555 555 0123", "channel": "sms"})
    client.get("/ops/", params={"q": EMAIL})
    client.get("/ops/", params={"q": "Rivera", "hotel": "Hotel Lumière"})
    client.get(f"/ops/deliveries/{hotels.lumiere_delivery}")
    client.get(f"/ops/deliveries/{hotels.harbour_delivery}")
    client.cookies.clear()
    client.headers["Authorization"] = f"Bearer {TOKENS['pms-lumiere']}"
    client.get("/api/deliveries", params={"q": PHONE})
    client.get(f"/api/deliveries/{hotels.lumiere_delivery}")

    entries = [e for e in audit(services) if e.action in ("search", "view")]
    seen = [(e.actor, e.action, e.target, e.outcome) for e in entries]
    assert seen == [
        ("lumiere-desk", "search", None, "ok"),
        ("lumiere-desk", "search", None, "ok"),
        ("lumiere-desk", "search", None, "ok"),
        ("lumiere-desk", "view", f"delivery {hotels.lumiere_delivery}", "ok"),
        ("lumiere-desk", "view", f"delivery {hotels.harbour_delivery}", "not_found"),
        ("api:pms-lumiere", "search", None, "ok"),
        ("api:pms-lumiere", "view", f"delivery {hotels.lumiere_delivery}", "ok"),
    ]
    by_phone, by_email, by_name, _, _, api_phone, _ = (e.detail or "" for e in entries)
    assert by_phone.startswith("'+1********23' (hash ")
    assert ", channel sms: 1 found (deliveries " in by_phone
    assert by_email.startswith("'a***@example.com' (hash ")
    assert by_name.startswith("'Rivera', hotel Hotel Lumière: ")
    assert api_phone.split(":")[0] == by_phone.split(",")[0]  # the same number, the same hash
    for entry in audit(services):
        for secret in (PHONE, "555 555 0123", EMAIL, TOKENS["pms-lumiere"]):
            assert secret not in f"{entry.actor} {entry.target} {entry.detail}"


def test_deliveries_keep_their_workspace_and_spaces_and_show_their_hotel(
    client: TestClient, services: Context, hotels: Hotels
) -> None:
    """The pipeline files Alex Rivera's deliveries under the access method's workspace and
    the grant's space; the list, the delivery page and the API name each delivery's hotel,
    and the hotel filter keeps to one hotel (an unknown hotel is a 400)."""
    with services.ledger.engine.connect() as connection:
        filed = connection.execute(
            select(Delivery.workspace_id, Delivery.space_ids).where(
                Delivery.access_method_id == CODE_ID
            )
        ).all()
    assert {tuple(row) for row in filed} == {(LUMIERE_WORKSPACE, f",{LUMIERE_SPACE},")}

    sign_in_as(client, "admin")
    listing = client.get("/ops/").text
    assert "<td>Hotel Lumière</td>" in listing
    assert "<td>Harbour Inn</td>" in listing
    harbour_only = client.get("/ops/", params={"hotel": "Harbour Inn"}).text
    assert "<td>Harbour Inn</td>" in harbour_only
    assert "<td>Hotel Lumière</td>" not in harbour_only
    page = client.get(f"/ops/deliveries/{hotels.lumiere_delivery}").text
    assert "<dt>Hotel</dt><dd>Hotel Lumière</dd>" in page
    assert client.get("/ops/", params={"hotel": "Nowhere"}).status_code == 400

    client.cookies.clear()
    client.headers["Authorization"] = f"Bearer {TOKENS['pms-group']}"
    listed = client.get("/api/deliveries", params={"hotel": "Hotel Lumière"}).json()
    assert {d["hotel"] for d in listed["deliveries"]} == {"Hotel Lumière"}
    one = client.get(f"/api/deliveries/{hotels.harbour_delivery}").json()
    assert (one["hotel"], one["workspace_id"]) == ("Harbour Inn", HARBOUR_WORKSPACE)
    assert client.get("/api/deliveries", params={"hotel": "Nowhere"}).status_code == 400


def test_a_spaces_hotel_wins_over_its_workspaces_and_ids_match_whole(
    services: Context,
) -> None:
    """A hotel named on a space takes that space's deliveries from the hotel named on its
    workspace, in the name shown and in the filter; a scope's space id matches whole, its
    underscore no wildcard."""
    properties = HotelMap(
        parse_properties(
            '[workspaces."ws-group"]\nproperty_name = "Lumière Group"\n'
            '[spaces."sp-rive"]\nproperty_name = "Rive Gauche"\n'
            '[spaces."sp-quiet"]\nlocale = "fr"\n'
        )
    )
    planned = {}
    for name, spaces in (("rive", ("sp-quiet", "sp-rive")), ("bare", ()),
                         ("quiet", ("sp-quiet",)), ("near", ("sp-rivex",))):  # fmt: skip
        planned[name], _ = services.ledger.plan_delivery(
            new_delivery(
                MessageKind.PIN_CODE,
                access_method_id=f"am-{name}",
                channel="sms",
                credential_fingerprint="f" * 40,
                event_id=None,
                about=About(guest_name=name, workspace_id="ws-group", space_ids=spaces),
                destination=Destination.of("+15555550100", b"k" * 32),
            )
        )
    store = ConsoleStore(services.ledger.engine)

    def found(scope: Scope = EVERYWHERE, hotel: str | None = None) -> set[str]:
        places = properties.places(hotel) if hotel else None
        rows = store.find_deliveries(DeliveryQuery(scope, hotel=places))
        return {row.guest_name or "" for row in rows}

    assert found(hotel="Rive Gauche") == {"rive"}
    assert found(hotel="Lumière Group") == {"bare", "quiet", "near"}
    assert found(Scope(spaces=frozenset({"sp-rive"}))) == {"rive"}
    assert found(Scope(spaces=frozenset({"sp_rive"}))) == set()
    assert found(Scope(workspaces=frozenset({"ws-group"}))) == set(planned)
    assert found(Scope()) == set()
    rows = store.find_deliveries(DeliveryQuery(EVERYWHERE))
    assert {r.guest_name: properties.name_of(r) for r in rows} == {
        "rive": "Rive Gauche",
        "bare": "Lumière Group",
        "quiet": "Lumière Group",
        "near": "Lumière Group",
    }
