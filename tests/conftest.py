"""Shared fixtures: real ledgers (SQLite and PostgreSQL), a real Redis, and provider stand-ins.

PostgreSQL and Redis are reached at TEST_POSTGRES_URL / TEST_REDIS_URL (defaults: the local
servers on 127.0.0.1). Each test session gets its own PostgreSQL database, dropped at the end;
tables are emptied between tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import Connection, Engine, create_engine, text

from app.context import Context
from app.ledger.migrate import upgrade
from app.ledger.models import Base
from app.ledger.store import Ledger, make_engine
from app.settings import load_settings
from app.standins.seam import SeamStandin
from app.standins.sendgrid import SendGridStandin
from app.standins.twilio import TwilioStandin

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        action="store_true",
        help="the browser tests also save each console page to docs/screenshots/",
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    name = f"keycourier_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """One engine for the fixtures that empty the session's database between tests (pinged
    before use: a test may end every connection to it)."""
    engine = create_engine(postgres_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


def empty_ledger(connection: Connection) -> None:
    """Every table of the ledger emptied, children first, and its ids started again from 1.
    (TRUNCATE took ~80 ms a test, new files for every table and index; this takes ~3.)"""
    for table in reversed(Base.metadata.sorted_tables):
        connection.execute(table.delete())
    sequences = text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
    for sequence in connection.execute(sequences).scalars():
        connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


@pytest.fixture
def clean_postgres_url(postgres_url: str, postgres_engine: Engine) -> Iterator[str]:
    """The session's PostgreSQL database, emptied after the test."""
    yield postgres_url
    with postgres_engine.begin() as connection:
        empty_ledger(connection)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger migrated to head, once a session: each test gets a copy (migrating
    took ~0.1 s a test)."""
    path = tmp_path_factory.mktemp("sqlite") / "migrated.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ledger's URL on each backend keycourier supports, migrated and empty."""
    if request.param == "postgresql":
        yield request.getfixturevalue("clean_postgres_url")
        return
    path = tmp_path / "ledger.sqlite3"
    shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
    yield f"sqlite:///{path}"


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger.from_url(database_url)
    yield ledger
    ledger.engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def seam() -> Iterator[SeamStandin]:
    with SeamStandin() as standin:
        standin.load_samples()
        yield standin


@pytest.fixture
def twilio() -> Iterator[TwilioStandin]:
    with TwilioStandin() as standin:
        yield standin


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandin]:
    with SendGridStandin() as standin:
        yield standin


def provider_env(
    seam: SeamStandin, twilio: TwilioStandin | None, sendgrid: SendGridStandin | None
) -> dict[str, str]:
    """The environment that points keycourier at the stand-ins."""
    env = {
        "SEAM_API_KEY": seam.api_key,
        "SEAM_ENDPOINT": seam.url,
        "SEAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TEMPLATES_DIR": str(TEMPLATES),
        "FRONT_DESK_EMAIL": "frontdesk@hotel.example",
        "PROVIDER_TIMEOUT_SECONDS": "5",
    }
    if twilio is not None:
        env.update(
            TWILIO_ACCOUNT_SID=twilio.account_sid,
            TWILIO_AUTH_TOKEN=twilio.auth_token,
            TWILIO_FROM_NUMBER="+15005550006",
            TWILIO_BASE_URL=twilio.url,
        )
    if sendgrid is not None:
        env.update(
            SENDGRID_API_KEY=sendgrid.api_key,
            SENDGRID_FROM_EMAIL="keys@hotel.example",
            SENDGRID_BASE_URL=sendgrid.url,
        )
    return env


@pytest.fixture
def settings_env(
    seam: SeamStandin, twilio: TwilioStandin, sendgrid: SendGridStandin, database_url: str
) -> dict[str, str]:
    return {**provider_env(seam, twilio, sendgrid), "DATABASE_URL": database_url}


@pytest.fixture
def services(settings_env: dict[str, str], ledger: Ledger) -> Context:
    """Context wired to the stand-ins through the official SDKs, on a real ledger."""
    return Context.from_settings(load_settings(settings_env), ledger)
