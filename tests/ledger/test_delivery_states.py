"""The delivery state machine: one table of transitions, and no status written around it.

Two checks, so neither a new module nor a clever statement slips past: the source of app/ is
scanned for a delivery status written anywhere but app/ledger/delivery_states.py, and the
engine refuses at run time an UPDATE of deliveries.status the machine did not build.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import bindparam, update

from app.ledger.delivery_states import (
    DELIVERIES,
    TRANSITIONS,
    Actor,
    IllegalTransition,
    allowed,
    move,
)
from app.ledger.models import Delivery, DeliveryStatus, one_of
from app.ledger.store import Ledger, NewDelivery
from tests.conftest import ROOT

MACHINE = ROOT / "app" / "ledger" / "delivery_states.py"
# Names the deliveries table goes by in app/ (the model, and its Core table).
DELIVERY_TABLES = {"Delivery", "DELIVERIES"}


def _status_writes(path: Path, root: Path = ROOT) -> list[str]:
    """Where a module writes a delivery's status: `.values(status=...)` on an update() of the
    deliveries table, or `<something>.status = ...` on an object that is not `self` (unless
    what it sets is an EventStatus: an event's)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
            and _sets_status(node)
            and _on_deliveries(node.func)
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "status"
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                    and not _an_event_status(node.value)
                ):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def _an_event_status(value: ast.expr | None) -> bool:
    """`EventStatus.X`: a Seam event's status (the events table), not a delivery's."""
    return (
        isinstance(value, ast.Attribute)
        and isinstance(value.value, ast.Name)
        and value.value.id == "EventStatus"
    )


def _sets_status(call: ast.Call) -> bool:
    if any(keyword.arg == "status" for keyword in call.keywords):
        return True
    return any(
        isinstance(arg, ast.Dict)
        and any(isinstance(k, ast.Constant) and k.value == "status" for k in arg.keys)
        for arg in call.args
    )


def _on_deliveries(node: ast.expr) -> bool:
    """Whether the chain a `.values` hangs from starts at update(<the deliveries table>)."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "update":
                first = node.args[0] if node.args else None
                return isinstance(first, ast.Name) and first.id in DELIVERY_TABLES
            node = func
        else:
            return False


def test_no_delivery_status_is_written_outside_the_machine() -> None:
    """No module of app/ but app/ledger/delivery_states.py sets deliveries.status in an UPDATE
    or on a loaded Delivery."""
    modules = [p for p in (ROOT / "app").rglob("*.py") if p != MACHINE]

    writes = [where for path in modules for where in _status_writes(path)]

    assert writes == []


def test_the_scan_finds_a_status_written_around_the_machine(tmp_path: Path) -> None:
    """The scan itself is not vacuous: it finds both ways of writing a status directly."""
    module = tmp_path / "probe.py"
    module.write_text(
        "from sqlalchemy import update\n"
        "from app.ledger.sending import DELIVERIES\n"
        "A = update(DELIVERIES).where(DELIVERIES.c.id == 1).values(status='sent')\n"
        "def f(delivery):\n"
        "    delivery.status = 'sent'\n"
    )
    assert _status_writes(module, tmp_path) == ["probe.py:3", "probe.py:5"]


def test_an_update_of_the_status_not_built_by_the_machine_is_refused(ledger: Ledger) -> None:
    """At run time the ledger's engine refuses an UPDATE setting deliveries.status that the
    machine did not build, and changes nothing."""
    delivery_id = _planned(ledger)
    with pytest.raises(IllegalTransition), ledger.engine.begin() as connection:
        connection.execute(
            update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(status="sent")
        )

    delivery = ledger.get_delivery(delivery_id)
    assert delivery is not None
    assert delivery.status == DeliveryStatus.PENDING


def test_a_bound_status_outside_the_transition_is_refused(ledger: Ledger) -> None:
    """A machine-built statement whose status is a parameter refuses a value its transition
    does not name (here: a worker's statement asked to make a delivery `delivered`)."""
    delivery_id = _planned(ledger)
    statement = move(
        Actor.WORKER,
        (DeliveryStatus.PENDING,),
        (DeliveryStatus.SENDING,),
        DELIVERIES.c.id == bindparam("b_id"),
    )
    with pytest.raises(IllegalTransition), ledger.engine.begin() as connection:
        connection.execute(statement, {"b_id": delivery_id, "b_status": DeliveryStatus.DELIVERED})


def test_a_move_the_table_does_not_allow_cannot_be_built() -> None:
    """Building a statement for a move nobody may make (a worker undoing `sent`, the sweeper
    sending) fails at once."""
    with pytest.raises(IllegalTransition):
        move(Actor.WORKER, (DeliveryStatus.SENT,), DeliveryStatus.PENDING)
    with pytest.raises(IllegalTransition):
        move(Actor.SWEEPER, (DeliveryStatus.PENDING,), DeliveryStatus.SENDING)


def test_final_statuses_have_no_way_out_but_the_providers_word() -> None:
    """sent, dry_run, failed, superseded, skipped and undelivered lead nowhere but forward
    along a provider's report (sent -> delivered -> undelivered)."""
    leaving = {source for source, _ in TRANSITIONS}
    assert DeliveryStatus.UNDELIVERED not in leaving
    for final in (
        DeliveryStatus.DRY_RUN,
        DeliveryStatus.FAILED,
        DeliveryStatus.SUPERSEDED,
        DeliveryStatus.SKIPPED,
    ):
        assert final not in leaving
    assert {target for source, target in TRANSITIONS if source == DeliveryStatus.SENT} == {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
    }
    assert allowed(Actor.PROVIDER, DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def _planned(ledger: Ledger) -> int:
    delivery_id, created = ledger.plan_delivery(
        NewDelivery(
            access_method_id="am-1",
            kind="pin_code",
            channel="sms",
            credential_fingerprint="fp-1",
            event_id=None,
            access_grant_id="ag-1",
            user_identity_id="ui-1",
            guest_name="Alex Rivera",
            reservation=None,
            destination_masked="+1********23",
        )
    )
    assert created
    return delivery_id


def test_one_of_writes_the_statuses_into_the_statement() -> None:
    """The hot statements' fixed status sets are part of the SQL text (nothing for SQLAlchemy
    to expand per execution), quoted from the ledger's own names; anything else is refused."""
    from sqlalchemy.dialects import postgresql

    table = Delivery.__table__
    condition = one_of(table.c.status, [DeliveryStatus.PENDING, DeliveryStatus.HELD])
    sql = str(condition.compile(dialect=postgresql.dialect()))
    assert sql == "deliveries.status IN ('held', 'pending')"
    with pytest.raises(ValueError, match="not a status name"):
        one_of(table.c.status, ["pending') OR (1=1"])
