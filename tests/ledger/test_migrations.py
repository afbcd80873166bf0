"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.ledger.migrate import alembic_config, upgrade
from app.ledger.models import Base
from app.ledger.store import make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    """After `upgrade head` there is nothing left for autogenerate to add or change."""
    engine = make_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()

    assert differences == []


def test_migrations_go_down_and_up_again(database_url: str) -> None:
    """Every migration can be undone and redone: a bad release can be rolled back."""
    engine = make_engine(database_url)
    command.downgrade(alembic_config(database_url), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(engine)
    assert {"events", "deliveries", "attempts", "front_desk_flags"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
