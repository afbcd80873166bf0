"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_0012_gives_existing_deliveries_their_events_workspace(database_url: str) -> None:
    """Deliveries recorded before 0012 take the workspace of the event that planned them;
    one planned by no event, and every delivery's spaces, stay unknown."""
    engine = make_engine(database_url)
    config = alembic_config(database_url)
    command.downgrade(config, "0007")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO events (id, workspace_id, access_grant_ids, is_backup_code, source, "
                "status, received_at, attempts) VALUES (1, 'ws-lumiere', '[]', false, 'webhook', "
                "'processed', CURRENT_TIMESTAMP, 0)"
            )
        )
        for delivery_id, event_id in ((1, 1), (2, None)):
            connection.execute(
                text(
                    "INSERT INTO deliveries (id, event_id, access_method_id, recipient, kind, "
                    "channel, credential_fingerprint, status, created_at, updated_at) VALUES "
                    "(:id, :event_id, 'am-1', :recipient, 'pin_code', 'sms', 'fp', 'sent', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": delivery_id, "event_id": event_id, "recipient": f"guest-{delivery_id}"},
            )
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, workspace_id, space_ids FROM deliveries ORDER BY id")
        ).all()
    engine.dispose()

    assert [tuple(row) for row in rows] == [(1, "ws-lumiere", None), (2, None, None)]
