"""Setting the console up: `keycourier ops-user` makes OPS_USERS entries (hashes, never the
password), and a web process refuses a console configuration it cannot run safely, with a
message that names the setting but never echoes a hash or secret."""

from __future__ import annotations

import subprocess
import sys

import pytest
from starlette.testclient import TestClient

from app.console.passwords import parse_users, verify_password
from app.errors import ConfigError
from app.ledger.store import Ledger
from app.settings import load_settings
from app.web.main import create_app
from tests.conftest import ROOT
from tests.console.support import console_env, web_env


def ops_user(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "ops-user", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_ops_user_prints_an_entry_whose_hash_checks_the_password() -> None:
    """The printed line is a valid OPS_USERS entry; the password itself is not in it."""
    result = ops_user("frontdesk", password="a long enough password")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert "a long enough password" not in line
    [user] = parse_users(line).values()
    assert user.name == "frontdesk"
    assert verify_password("a long enough password", user.password_hash)
    assert not verify_password("a long enough passworD", user.password_hash)


@pytest.mark.parametrize(
    ("name", "password", "complaint"),
    [
        ("desk", "short", "12 characters"),
        ("desk:admin", "a long enough password", "no ':'"),
    ],
)
def test_ops_user_refuses_a_short_password_or_a_bad_name(
    name: str, password: str, complaint: str
) -> None:
    """A short password or a name that would break OPS_USERS prints no entry."""
    result = ops_user(name, password=password)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"OPS_SESSION_SECRET": ""}, "OPS_SESSION_SECRET is not set"),
        ({"OPS_SESSION_SECRET": "too-short"}, "OPS_SESSION_SECRET is too short"),
        ({"OPS_USERS": "desk:plaintext-password"}, "OPS_USERS entry 1 is not name:scrypt$"),
        ({"OPS_USERS": "desk:scrypt$1$2"}, "OPS_USERS entry 1 has a malformed hash"),
    ],
)
def test_a_console_set_up_wrong_stops_the_web_process(
    ledger: Ledger, redis_url: str, changes: dict[str, str], complaint: str
) -> None:
    """A missing or short session secret, or an entry that is not a hash, is a ConfigError."""
    env = web_env(ledger.engine.url.render_as_string(False), redis_url) | changes
    with pytest.raises(ConfigError) as raised:
        create_app(load_settings(env), ledger=ledger)
    assert complaint in str(raised.value)
    assert "plaintext-password" not in str(raised.value)
    assert console_env()["OPS_USERS"] not in str(raised.value)


def test_without_users_or_tokens_nobody_gets_in(ledger: Ledger, redis_url: str) -> None:
    """With no OPS_USERS the console shows how to set it up (503, no form to fail), and a sign-in
    posted anyway gets the same steps, not a 403; with no API_TOKENS the API refuses every
    request, an empty bearer token included."""
    env = web_env(ledger.engine.url.render_as_string(False), redis_url)
    for name in ("OPS_USERS", "OPS_SESSION_SECRET", "API_TOKENS"):
        env.pop(name)
    with TestClient(create_app(load_settings(env), ledger=ledger)) as client:
        page = client.get("/ops/sign-in")
        assert page.status_code == 503
        assert "The console is not set up" in page.text
        assert "<form" not in page.text
        for step in ("keycourier ops-user NAME", "OPS_USERS=", "OPS_SESSION_SECRET=", "Restart"):
            assert step in page.text
        answer = client.post("/ops/sign-in", data={"name": "desk", "password": "x" * 20})
        assert answer.status_code == 503
        assert "keycourier ops-user NAME" in answer.text
        assert client.get("/ops/", follow_redirects=False).status_code == 303
        for header in ("", "Bearer ", "Bearer  ", "Bearer None"):
            answer = client.get("/api/deliveries", headers={"Authorization": header})
            assert answer.status_code == 401
