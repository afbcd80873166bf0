"""Shared by the console's tests: a console user, the settings that enable the console and
the API, and signing in through the real form."""

from __future__ import annotations

import re
from functools import cache

from starlette.testclient import TestClient

from app.console.passwords import hash_password
from tests.conftest import TEMPLATES, WEBHOOK_SECRET

NAME = "desk"
PASSWORD = "correct horse battery staple"
SESSION_SECRET = "s" * 16 + "0123456789abcdef0123456789abcdef"
API_TOKEN = "api-token-for-the-pms-0123456789"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@cache
def ops_users() -> str:
    return f"{NAME}:{hash_password(PASSWORD)},night:{hash_password('another password 42')}"


def console_env() -> dict[str, str]:
    return {
        "OPS_USERS": ops_users(),
        "OPS_SESSION_SECRET": SESSION_SECRET,
        "API_TOKENS": f"someone-elses-token-000000000,{API_TOKEN}",
        "OPS_LOCKOUT_FAILURES": "3",
    }


def web_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TEMPLATES_DIR": str(TEMPLATES),
        **console_env(),
    }


def csrf_token(client: TestClient, path: str = "/ops/sign-in") -> str:
    page = client.get(path)
    found = CSRF.search(page.text)
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: TestClient, name: str = NAME, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the signed-in session's CSRF token."""
    answer = client.post(
        "/ops/sign-in",
        data={"csrf_token": csrf_token(client), "name": name, "password": password,
              "next": "/ops/"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    return csrf_token(client, "/ops/")
