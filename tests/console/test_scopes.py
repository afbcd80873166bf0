"""Roles and scopes: every console and API route, enumerated from the app, walked by every
role and scope, with one hotel's ids and the other's, on SQLite and PostgreSQL. Nobody sees or
acts on a guest outside their scope, by list, search or id (a 404, as if it did not exist);
a role without the permission a route needs gets 403."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from app.console.access import GRANTS, Permission, Role
from app.context import Context
from app.ledger.models import AuditEntry, Delivery
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.web.main import create_app
from tests.console.support import csrf_token
from tests.console.two_hotels import (
    BARE_TOKEN,
    HARBOUR_CARD,
    HARBOUR_EMAIL,
    HARBOUR_METHOD,
    HARBOUR_PHONE,
    HARBOUR_TRACES,
    LUMIERE_RESERVATION,
    LUMIERE_TRACES,
    PASSWORD,
    TOKENS,
    USERS,
    Hotels,
    User,
    access_env,
    two_hotels,
)

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
PUBLIC = {("GET", "/ops/sign-in"), ("POST", "/ops/sign-in"), ("GET", "/ops/static")}
# The permission each console route needs; a route missing here fails the walk.
NEEDS = {
    ("GET", "/ops/"): Permission.READ,
    ("GET", "/ops/deliveries/{delivery_id}"): Permission.READ,
    ("POST", "/ops/deliveries/{delivery_id}/resend"): Permission.RESEND,
    ("GET", "/ops/cards"): Permission.READ,
    ("GET", "/ops/cards/{flag_id}"): Permission.READ,
    ("POST", "/ops/cards/{flag_id}/encode"): Permission.ENCODE,
    ("POST", "/ops/cards/{flag_id}/assign"): Permission.ENCODE,
    ("POST", "/ops/cards/{flag_id}/scan"): Permission.ENCODE,
    ("POST", "/ops/cards/{flag_id}/check"): Permission.ENCODE,
    ("GET", "/ops/alerts"): Permission.READ,
    ("GET", "/ops/templates"): Permission.TEMPLATES,
    ("POST", "/ops/templates/preview"): Permission.TEMPLATES,
    ("GET", "/ops/audit"): Permission.AUDIT,
    ("GET", "/ops/webhooks"): Permission.WEBHOOKS,
    ("POST", "/ops/sign-out"): None,
}
# The API's write routes (/api/v1) and the permission each needs; every other /api route reads.
API_NEEDS = {
    ("POST", "/api/v1/deliveries/{delivery_id}/resend"): Permission.RESEND,
    ("GET", "/api/v1/flags/{flag_id}/encoders"): Permission.ENCODE,
    ("POST", "/api/v1/flags/{flag_id}/encode"): Permission.ENCODE,
}
# What a write route answers a token allowed to use it, in scope, given no body: a resend is
# refused while the guest's message is still on its way (409: the walk's delivery is pending;
# tests/console/test_api_v1.py resends a sent one), an encode asks which encoder (400).
API_ANSWERS = {
    ("POST", "/api/v1/deliveries/{delivery_id}/resend"): 409,
    ("POST", "/api/v1/flags/{flag_id}/encode"): 400,
}
# Tokens ACCESS_FILE names with a role that writes (two_hotels.py); the others only read.
API_WRITERS = {"pms-lumiere-room"}


def templated_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, its parameters left as {name}."""
    for route in routes:
        if isinstance(route, Mount):
            if route.routes:
                yield from templated_routes(list(route.routes), prefix + route.path)
            else:
                yield "GET", prefix + route.path
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    yield method, PARAM.sub(r"{\1}", prefix + route.path)


def fill(path: str, delivery_id: int, flag_id: int) -> str:
    """The path with a delivery's and a card flag's ids; any other parameter fails the test
    (a new kind of id must be walked too)."""
    names = set(PARAM.findall(path))
    assert names <= {"delivery_id", "flag_id"}, f"walk {path}: unknown parameter(s) {names}"
    return path.replace("{delivery_id}", str(delivery_id)).replace("{flag_id}", str(flag_id))


@pytest.fixture
def hotels(services: Context, seam: SeamStandin) -> Hotels:
    return two_hotels(services, seam)


@pytest.fixture
def app_env(
    settings_env: dict[str, str], redis_url: str, tmp_path: Path, hotels: Hotels
) -> dict[str, str]:
    return {**settings_env, "REDIS_URL": redis_url, **access_env(tmp_path)}


@pytest.fixture
def client(app_env: dict[str, str], services: Context) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(app_env), ledger=services.ledger)) as client:
        yield client


def sign_in_as(client: TestClient, name: str) -> str:
    client.cookies.clear()
    answer = client.post(
        "/ops/sign-in",
        data={"csrf_token": csrf_token(client), "name": name, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_token(client, "/ops/")


def harbour_ids(services: Context) -> list[int]:
    """Every delivery of Harbour Inn's guest and card."""
    with services.ledger.engine.connect() as connection:
        return list(
            connection.execute(
                select(Delivery.id).where(
                    Delivery.access_method_id.in_([HARBOUR_METHOD, HARBOUR_CARD])
                )
            ).scalars()
        )


def harbour_rows(services: Context) -> int:
    return len(harbour_ids(services))


def may(user: User, permission: Permission | None) -> bool:
    if permission is None:
        return True
    if permission is Permission.AUDIT and not (user.sees_lumiere and user.sees_harbour):
        return False
    return permission in GRANTS[Role(user.role)]


@pytest.mark.parametrize("user", USERS, ids=lambda u: u.name)
def test_every_console_route_keeps_each_user_to_their_role_and_hotels(
    client: TestClient, services: Context, seam: SeamStandin, hotels: Hotels, user: User
) -> None:
    """Every /ops route, with Lumière's ids and Harbour's: a role without the permission gets
    403; an id outside the scope is a 404 that changes nothing; no page shows a guest outside
    the scope, whatever is searched for."""
    token = sign_in_as(client, user.name)
    routes = [
        (method, path)
        for method, path in templated_routes(list(client.app.routes))  # type: ignore[attr-defined]
        if path.startswith("/ops") and (method, path) not in PUBLIC
    ]
    assert set(routes) == set(NEEDS), "a console route is missing from NEEDS (or gone)"
    before = harbour_rows(services)
    ids = {
        "lumiere": (hotels.lumiere_delivery, hotels.lumiere_flag),
        "harbour": (hotels.harbour_delivery, hotels.harbour_flag),
    }
    for method, template in routes:
        if template == "/ops/sign-out":
            continue
        permission = NEEDS[(method, template)]
        for hotel, (delivery_id, flag_id) in ids.items():
            path = fill(template, delivery_id, flag_id)
            if method == "GET":
                answer = client.get(path, follow_redirects=False)
            else:
                answer = client.post(path, data={"csrf_token": token}, follow_redirects=False)
            seen = user.sees_lumiere if hotel == "lumiere" else user.sees_harbour
            where = (user.name, method, path)
            if not may(user, permission):
                assert answer.status_code == 403, where
            elif "{" in template and not seen:
                assert answer.status_code == 404, where
            else:
                assert answer.status_code in (200, 303, 400), where  # 400: a form left empty
            if not user.sees_harbour:
                for trace in HARBOUR_TRACES:
                    assert trace not in answer.text, (where, trace)
            if not user.sees_lumiere:
                for trace in LUMIERE_TRACES:
                    assert trace not in answer.text, (where, trace)
    for query in (HARBOUR_PHONE, HARBOUR_EMAIL, "Morgan", "harbour",
                  str(hotels.harbour_delivery), HARBOUR_METHOD):  # fmt: skip
        answer = client.get("/ops/", params={"q": query})
        assert answer.status_code == 200
        found = any(f'href="/ops/deliveries/{i}"' in answer.text for i in harbour_ids(services))
        assert found is user.sees_harbour, (user.name, query)
    page = client.get("/ops/")
    assert (LUMIERE_RESERVATION in page.text) is user.sees_lumiere
    # Nothing was done to Harbour's guest by anyone who may not see them.
    if not user.sees_harbour:
        assert harbour_rows(services) == before
        asked = [r for r in seam.requests if HARBOUR_CARD in r.body.decode() + str(r.query)]
        assert asked == [], "Seam was asked about Harbour's card"


API_CLIENTS = [
    ("pms-lumiere", TOKENS["pms-lumiere"], True, False),
    ("pms-lumiere-room", TOKENS["pms-lumiere-room"], True, False),
    ("pms-group", TOKENS["pms-group"], True, True),
    ("token-4", BARE_TOKEN, True, True),  # a bare token, as before roles: everywhere
]


@pytest.mark.parametrize(("name", "token", "sees_lumiere", "sees_harbour"), API_CLIENTS,
                         ids=[c[0] for c in API_CLIENTS])  # fmt: skip
def test_every_api_route_keeps_each_token_to_its_hotels(
    client: TestClient,
    services: Context,
    hotels: Hotels,
    name: str,
    token: str,
    sees_lumiere: bool,
    sees_harbour: bool,
) -> None:
    """Every /api and /api/v1 route, with Lumière's ids and Harbour's: an id outside the
    token's scope is a 404; a write route (resend, encode) is a 403 to a token whose role may
    not (a viewer, or a token ACCESS_FILE does not name); no answer names a guest outside the
    scope, whatever is searched for; reads are audited under the token's name, never the
    token."""
    client.headers["Authorization"] = f"Bearer {token}"
    routes = [
        (m, p)
        for m, p in templated_routes(list(client.app.routes))  # type: ignore[attr-defined]
        if p.startswith("/api")
    ]
    assert set(API_NEEDS) <= set(routes)
    assert len(routes) >= 12
    for method, template in routes:
        for delivery_id, flag_id, seen in (
            (hotels.lumiere_delivery, hotels.lumiere_flag, sees_lumiere),
            (hotels.harbour_delivery, hotels.harbour_flag, sees_harbour),
        ):
            path = fill(template, delivery_id, flag_id)
            answer = client.request(method, path)
            if (method, template) in API_NEEDS and name not in API_WRITERS:
                expected = 403
            elif "{" in template and not seen:
                expected = 404
            else:
                expected = API_ANSWERS.get((method, template), 200)
            assert answer.status_code == expected, (name, path, answer.text)
            if not sees_harbour:
                for trace in HARBOUR_TRACES:
                    assert trace not in answer.text, (name, path, trace)
    for query in (HARBOUR_PHONE, HARBOUR_EMAIL, "Morgan", str(hotels.harbour_delivery)):
        listed = client.get("/api/deliveries", params={"q": query}).json()["deliveries"]
        found = {d["id"] for d in listed} & set(harbour_ids(services))
        assert bool(found) is sees_harbour, (name, query)
    with services.ledger.engine.connect() as connection:
        actors = set(connection.execute(select(AuditEntry.actor)).scalars())
    assert f"api:{name}" in actors
    assert not any(token in actor for actor in actors)


def test_a_viewer_is_offered_no_action_and_sees_only_their_hotels_filter(
    client: TestClient, hotels: Hotels
) -> None:
    """A viewer's pages offer no resend, no encoding, no template preview or audit log; the
    hotel filter lists only the hotels of their scope."""
    sign_in_as(client, "lumiere-viewer")
    delivery = client.get(f"/ops/deliveries/{hotels.lumiere_delivery}").text
    assert "Resend to guest" not in delivery
    assert "Hotel Lumière" in delivery
    card = client.get(f"/ops/cards/{hotels.lumiere_flag}").text
    assert "Encode card" not in card
    assert "may not encode" in card
    listing = client.get("/ops/").text
    assert "Template preview" not in listing
    assert "Audit log" not in listing
    assert '<option value="Hotel Lumière"' in listing
    assert "Harbour Inn" not in listing
    assert client.get("/ops/templates").status_code == 403

    sign_in_as(client, "admin")
    listing = client.get("/ops/").text
    assert "Template preview" in listing
    assert '<option value="Harbour Inn"' in listing
