"""Who gets into the ops console and its API: every route is enumerated from the app itself,
so a route added later is checked without anyone remembering to; CSRF on every POST; the
sign-in lockout, kept in the ledger; the session cookie's flags."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from app.console.passwords import hash_password
from app.ledger.console import ConsoleStore
from app.ledger.store import Ledger
from app.settings import load_settings
from app.web.main import create_app
from tests.console.support import (
    API_TOKEN,
    NAME,
    PASSWORD,
    csrf_token,
    sign_in,
    web_env,
)

# The only console paths a stranger may open: the sign-in form and its CSS/JS.
PUBLIC = {("GET", "/ops/sign-in"), ("POST", "/ops/sign-in"), ("GET", "/ops/static")}
# Every route outside /ops and /api, and why a stranger may reach it: each checks its own
# signature or token, or says nothing about a guest.
OUTSIDE = {
    ("POST", "/webhooks/seam"): "Svix-signed by Seam",
    ("POST", "/webhooks/seam/1"): "Svix-signed by Seam, with that workspace's secret",
    ("POST", "/webhooks/twilio/status"): "signed by Twilio",
    ("POST", "/webhooks/sendgrid/events"): "signed by SendGrid",
    ("GET", "/healthz"): "alive or not: nothing about a guest",
    ("GET", "/readyz"): "ready or not: nothing about a guest",
    ("GET", "/metrics"): "METRICS_TOKEN when set; counters, no guest",
    # The guest's own resend link: the signed token in its path is the capability (404 for
    # any other), and it only ever sends the guest's key to their own destination on file.
    ("GET", "/k/1"): "the guest's resend link: its signed token is the capability",
    ("POST", "/k/1"): "the guest's resend link: its signed token is the capability",
}
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def routes_of(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, inside mounts too; a path parameter becomes 1."""
    for route in routes:
        if isinstance(route, Mount):
            if route.routes:
                yield from routes_of(list(route.routes), prefix + route.path)
            else:
                yield "GET", prefix + route.path  # an app mounted whole (static files)
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    yield method, PARAM.sub("1", prefix + route.path)


@pytest.fixture
def client(ledger: Ledger, redis_url: str) -> Iterator[TestClient]:
    settings = load_settings(web_env(str(ledger.engine.url.render_as_string(False)), redis_url))
    with TestClient(create_app(settings, ledger=ledger)) as client:
        yield client


def console_and_api(client: TestClient) -> list[tuple[str, str]]:
    found = [
        (method, path)
        for method, path in routes_of(list(client.app.routes))  # type: ignore[attr-defined]
        if path.startswith(("/ops", "/api"))
    ]
    # Not vacuous: the pages and actions the console documents are all there.
    assert {("GET", "/ops/"), ("POST", "/ops/deliveries/1/resend"), ("POST", "/ops/cards/1/encode"),
            ("GET", "/api/deliveries"), ("GET", "/api/deliveries/1")} <= set(found)  # fmt: skip
    return found


def test_every_console_route_refuses_a_stranger(client: TestClient) -> None:
    """Without a session, every console page sends the visitor to sign in and every action
    is refused with 403; only the sign-in form and its static files are open."""
    checked = 0
    for method, path in console_and_api(client):
        if not path.startswith("/ops") or (method, path) in PUBLIC:
            continue
        answer = client.request(method, path, follow_redirects=False)
        if method == "GET":
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ops/sign-in?next="), path
        else:
            assert answer.status_code == 403, (method, path)
        checked += 1
    assert checked >= 11
    assert client.get("/ops/static/console.css").status_code == 200


def test_every_route_outside_the_console_is_a_known_public_one(client: TestClient) -> None:
    """Every route the web process serves outside /ops and /api is in OUTSIDE, with the reason a
    stranger may reach it: a new public route is a decision, not an accident. The guest link
    answers a stranger without its token with the plain "not valid" page, naming nothing."""
    outside = {
        (method, path)
        for method, path in routes_of(list(client.app.routes))  # type: ignore[attr-defined]
        if not path.startswith(("/ops", "/api"))
    }
    assert outside <= set(OUTSIDE), sorted(outside - set(OUTSIDE))
    assert {("GET", "/k/1"), ("POST", "/k/1"), ("POST", "/webhooks/seam")} <= outside
    for method in ("GET", "POST"):
        answer = client.request(method, "/k/1")
        assert answer.status_code == 404
        assert "This link does not work" in answer.text
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "set-cookie" not in answer.headers


def test_every_api_route_refuses_a_missing_or_wrong_token(client: TestClient) -> None:
    """No token, a wrong one, or a console session cookie: 401 on every /api route."""
    sign_in(client)  # a console session is no key to the API
    checked = 0
    for method, path in console_and_api(client):
        if not path.startswith("/api"):
            continue
        if path == "/api/v1/openapi.json":  # the document describes; it holds nothing
            assert client.get(path).status_code == 200
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
            answer = client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
        good = client.request(method, path, headers={"Authorization": f"Bearer {API_TOKEN}"})
        if "/v1/" in path and (method == "POST" or path.endswith("/encoders")):
            # A write route: a token ACCESS_FILE does not name only reads.
            assert good.status_code == 403, (method, path)
        else:
            assert good.status_code in (200, 404), (method, path)
        checked += 1
    assert checked >= 4


def test_every_post_needs_the_sessions_csrf_token(client: TestClient) -> None:
    """Signed in, a POST without the token, or with another session's, is refused (403) and
    does nothing; the sign-in form needs one too."""
    other = sign_in(TestClient(client.app))
    token = sign_in(client)
    # The API's POSTs take a bearer token, not a session: no cookie, so no CSRF to forge.
    posts = [p for m, p in console_and_api(client) if m == "POST" and p.startswith("/ops")]
    assert "/ops/sign-out" in posts
    for path in posts:
        for data in ({}, {"csrf_token": other}, {"csrf_token": token + "x"}):
            answer = client.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, data)
    # Still signed in: the refused sign-out did not sign out.
    assert client.get("/ops/audit", follow_redirects=False).status_code == 200
    assert client.post("/ops/sign-out", data={"csrf_token": token}).status_code == 200
    assert client.get("/ops/audit", follow_redirects=False).status_code == 303


def test_lockout_after_repeated_failures_holds_across_processes(
    client: TestClient, ledger: Ledger, redis_url: str
) -> None:
    """OPS_LOCKOUT_FAILURES (3 here) wrong passwords lock the name, even for the right
    password, in another web process too; an unknown name reads exactly the same."""

    def attempt(c: TestClient, name: str, password: str) -> tuple[int, str]:
        answer = c.post(
            "/ops/sign-in",
            data={"csrf_token": csrf_token(c), "name": name, "password": password},
            follow_redirects=False,
        )
        found = re.search(r'role="alert"[^>]*>([^<]+)<', answer.text)
        return answer.status_code, found.group(1) if found else ""

    known = [attempt(client, NAME, "wrong password") for _ in range(3)]
    unknown = [attempt(client, "nobody", "wrong password") for _ in range(3)]
    assert known == unknown  # same answers: nothing tells which names exist
    assert known[0] == (401, "That name and password do not match.")
    assert known[2][0] == 429
    assert "Too many failed sign-ins" in known[2][1]

    status, message = attempt(client, NAME, PASSWORD)
    assert status == 429
    assert "Too many failed sign-ins" in message
    # A second web process on the same ledger sees the same lockout.
    settings = load_settings(web_env(str(ledger.engine.url.render_as_string(False)), redis_url))
    with TestClient(create_app(settings, ledger=Ledger(ledger.engine))) as other:
        assert attempt(other, NAME, PASSWORD)[0] == 429
    # Another name is not locked by this one.
    assert attempt(client, "night", "another password 42")[0] == 303

    entries = ConsoleStore(ledger.engine).audit_entries()
    outcomes = [(e.actor, e.outcome) for e in entries if e.action == "sign_in"]
    assert outcomes.count((NAME, "failed")) == 3
    assert (NAME, "locked_out") in outcomes
    assert ("(unknown name)", "failed") in outcomes
    assert all(PASSWORD not in (e.detail or "") for e in entries)


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(
    ledger: Ledger, redis_url: str
) -> None:
    """The cookie is HttpOnly, SameSite=Lax and scoped to /ops; Secure over https; a
    tampered cookie is no session."""
    settings = load_settings(web_env(str(ledger.engine.url.render_as_string(False)), redis_url))
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(create_app(settings, ledger=ledger), base_url=base) as client:
            cookie = client.get("/ops/sign-in").headers["set-cookie"]
            assert "HttpOnly" in cookie
            assert "SameSite=lax" in cookie
            assert "Path=/ops" in cookie
            assert ("Secure" in cookie) is secure
    with TestClient(create_app(settings, ledger=ledger)) as client:
        sign_in(client)
        value = client.cookies["keycourier_ops"]
        client.cookies.clear()
        client.cookies.set("keycourier_ops", value[:-2] + ("xx" if value[-2:] != "xx" else "yy"))
        assert client.get("/ops/", follow_redirects=False).status_code == 303
        client.cookies.clear()
        client.cookies.set("keycourier_ops", value)
        assert client.get("/ops/", follow_redirects=False).status_code == 200


def test_a_changed_password_ends_existing_sessions(ledger: Ledger, redis_url: str) -> None:
    """A session signed in before the user's hash changed in OPS_USERS is signed out."""
    env = web_env(str(ledger.engine.url.render_as_string(False)), redis_url)
    with TestClient(create_app(load_settings(env), ledger=ledger)) as client:
        sign_in(client)
        cookie = client.cookies["keycourier_ops"]
    changed = {**env, "OPS_USERS": f"{NAME}:{hash_password('a brand new password')}"}
    with TestClient(create_app(load_settings(changed), ledger=ledger)) as client:
        client.cookies.set("keycourier_ops", cookie)
        assert client.get("/ops/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("wanted", ["//evil.example/ops/", "https://evil.example/", "/elsewhere"])
def test_sign_in_goes_back_only_to_a_console_page(client: TestClient, wanted: str) -> None:
    """The page asked for before signing in is honoured only inside /ops (no open redirect)."""
    answer = client.post(
        "/ops/sign-in",
        data={"csrf_token": csrf_token(client), "name": NAME, "password": PASSWORD,
              "next": wanted},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ops/"


def test_sign_in_returns_to_the_console_page_asked_for(client: TestClient) -> None:
    """A stranger sent to sign in from a console page is taken back to it afterwards."""
    first = client.get("/ops/audit?page=1", follow_redirects=False)
    assert first.headers["location"] == "/ops/sign-in?next=/ops/audit"
    answer = client.post(
        "/ops/sign-in",
        data={"csrf_token": csrf_token(client), "name": NAME, "password": PASSWORD,
              "next": "/ops/audit"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.headers["location"] == "/ops/audit"
