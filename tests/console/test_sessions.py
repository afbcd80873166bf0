"""Console sessions kept in the ledger: signing out revokes the session (a copied cookie is
then worth nothing), so do a changed password and OPS_SESSION_IDLE_MINUTES without a request;
OPS_SESSION_HOURS still bounds a session however busy. The ledger keeps a hash of the id only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text
from starlette.testclient import TestClient

from app.console.sessions import COOKIE
from app.ledger.store import Ledger
from app.settings import load_settings
from app.web.main import create_app
from tests.console.support import sign_in, web_env

# A fixed start for the travelling clock: sessions are timed in Python, not by the database.
START = datetime(2053, 6, 10, 12, tzinfo=UTC)


def make_client(ledger: Ledger, redis_url: str, **changes: str) -> TestClient:
    env = {**web_env(ledger.engine.url.render_as_string(False), redis_url), **changes}
    return TestClient(create_app(load_settings(env), ledger=ledger))


@pytest.fixture
def client(ledger: Ledger, redis_url: str) -> Iterator[TestClient]:
    with make_client(ledger, redis_url) as client:
        yield client


def signed_in(client: TestClient, cookie: str | None = None) -> bool:
    """Whether the console lets this client (or this cookie, alone) in."""
    if cookie is not None:
        client.cookies.clear()
        client.cookies.set(COOKIE, cookie)
    answer = client.get("/ops/", follow_redirects=False)
    assert answer.status_code in (200, 303), answer.text
    return answer.status_code == 200


def sessions_in(ledger: Ledger) -> list[tuple[str, str]]:
    """(id_hash, user_name) of every session row."""
    with ledger.engine.connect() as connection:
        rows = connection.execute(text("SELECT id_hash, user_name FROM ops_sessions"))
        return [(row.id_hash, row.user_name) for row in rows]


def test_sign_out_revokes_a_copied_cookie(client: TestClient, ledger: Ledger) -> None:
    """A copy of the session cookie taken before signing out no longer signs anyone in."""
    token = sign_in(client)
    copied = client.cookies[COOKIE]
    thief = TestClient(client.app)  # another browser, on the same app
    assert signed_in(thief, copied)
    assert client.post("/ops/sign-out", data={"csrf_token": token}).status_code == 200
    assert not signed_in(thief, copied)
    assert sessions_in(ledger) == []


def test_the_ledger_keeps_only_a_hash_of_the_session_id(client: TestClient, ledger: Ledger) -> None:
    """The session row names the user, never the id the cookie carries."""
    sign_in(client)
    [(id_hash, user_name)] = sessions_in(ledger)
    assert user_name == "desk"
    assert id_hash not in client.cookies[COOKIE]
    assert len(id_hash) == 64


def test_each_sign_in_is_a_new_session(client: TestClient, ledger: Ledger) -> None:
    """Signing in again replaces the browser's session: the cookie from before is over."""
    sign_in(client)
    before = client.cookies[COOKIE]
    sign_in(client)
    assert len(sessions_in(ledger)) == 1
    assert not signed_in(TestClient(client.app), before)


def test_an_idle_session_ends(ledger: Ledger, redis_url: str) -> None:
    """With OPS_SESSION_IDLE_MINUTES at 30, requests 20 minutes apart keep the session, and 31
    minutes without one end it (on a travelling clock: no test waits, none races the load)."""
    with (
        time_machine.travel(START, tick=True) as clock,
        make_client(ledger, redis_url, OPS_SESSION_IDLE_MINUTES="30") as client,
    ):
        sign_in(client)
        for _ in range(3):
            clock.shift(timedelta(minutes=20))
            assert signed_in(client)
        clock.shift(timedelta(minutes=31))
        assert not signed_in(client)
    assert sessions_in(ledger) == []  # an ended session found is cleared away


def test_a_busy_session_still_ends_after_ops_session_hours(ledger: Ledger, redis_url: str) -> None:
    """The absolute lifetime holds however active the session: with OPS_SESSION_HOURS at 1, a
    request every 20 minutes keeps it for the hour, and not a minute past it."""
    with (
        time_machine.travel(START, tick=True) as clock,
        make_client(ledger, redis_url, OPS_SESSION_HOURS="1") as client,
    ):
        sign_in(client)
        for _ in range(2):
            clock.shift(timedelta(minutes=20))
            assert signed_in(client)
        clock.shift(timedelta(minutes=21))
        assert not signed_in(client)
