"""The delivery state machine: every status a delivery may move to, from where, and who moves it.

Every UPDATE of `deliveries.status` is built here (`move`), from this table, and carries the
transition it was built for; the engine's guard (`guard`, installed by make_engine) refuses at
run time any UPDATE that sets the status without one, or with a status its transition does
not allow. tests/ledger/test_delivery_states.py also scans the ledger's source for a status
written anywhere else. docs/architecture.md draws it.

    planner:   pending -> held -> pending            (Seam revoked, then issued again)
               pending | held -> superseded          (a newer credential, a deleted method)
    worker:    pending | unknown -> sending          (a claim: a fresh claim token)
    (holder)   sending -> sent | dry_run | failed | pending (retry) | unknown (no answer)
               sending -> superseded | skipped | held (not sendable as planned)
    sweeper:   sending (lease expired) -> unknown (a call was in flight) | pending
               pending | unknown | held (stay over) -> expired
    scheduler: expired -> pending                    (the stay was extended)
    provider:  unknown -> sent; sending | unknown | sent -> delivered;
               sending | unknown | sent | delivered -> undelivered (final)

A holder's moves (from `sending`) are fenced by its claim token in the same statement
(app/ledger/sending.py); the sweeper's by the lease having run out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import BindParameter

from app.errors import IllegalTransition
from app.ledger.models import Delivery, one_of
from app.ledger.models import DeliveryStatus as S

DELIVERIES = cast(Table, Delivery.__table__)
STATUS_PARAM = "b_status"


class Actor(StrEnum):
    PLANNER = "planner"  # processing a Seam event: plan, hold, release, supersede
    WORKER = "worker"  # the holder of a claim (sending one delivery)
    SWEEPER = "sweeper"  # beat: expired leases, expired windows
    SCHEDULER = "scheduler"  # a grant's new times (app/delivery/scheduling.py)
    PROVIDER = "provider"  # a provider's status report (Twilio, SendGrid)


# (from, to) -> who may make that move. Nothing else is a transition.
TRANSITIONS: Mapping[tuple[S, S], frozenset[Actor]] = {
    (S.PENDING, S.HELD): frozenset({Actor.PLANNER}),
    (S.HELD, S.PENDING): frozenset({Actor.PLANNER}),
    (S.PENDING, S.SUPERSEDED): frozenset({Actor.PLANNER}),
    (S.HELD, S.SUPERSEDED): frozenset({Actor.PLANNER}),
    (S.PENDING, S.SENDING): frozenset({Actor.WORKER}),
    (S.UNKNOWN, S.SENDING): frozenset({Actor.WORKER}),
    (S.SENDING, S.SENT): frozenset({Actor.WORKER}),
    (S.SENDING, S.DRY_RUN): frozenset({Actor.WORKER}),
    (S.SENDING, S.FAILED): frozenset({Actor.WORKER}),
    (S.SENDING, S.SUPERSEDED): frozenset({Actor.WORKER}),
    (S.SENDING, S.SKIPPED): frozenset({Actor.WORKER}),
    (S.SENDING, S.HELD): frozenset({Actor.WORKER}),
    (S.SENDING, S.PENDING): frozenset({Actor.WORKER, Actor.SWEEPER}),
    (S.SENDING, S.UNKNOWN): frozenset({Actor.WORKER, Actor.SWEEPER}),
    (S.PENDING, S.EXPIRED): frozenset({Actor.SWEEPER}),
    (S.UNKNOWN, S.EXPIRED): frozenset({Actor.SWEEPER}),
    (S.HELD, S.EXPIRED): frozenset({Actor.SWEEPER}),
    (S.EXPIRED, S.PENDING): frozenset({Actor.SCHEDULER}),
    (S.UNKNOWN, S.SENT): frozenset({Actor.PROVIDER}),
    (S.SENDING, S.DELIVERED): frozenset({Actor.PROVIDER}),
    (S.UNKNOWN, S.DELIVERED): frozenset({Actor.PROVIDER}),
    (S.SENT, S.DELIVERED): frozenset({Actor.PROVIDER}),
    (S.SENDING, S.UNDELIVERED): frozenset({Actor.PROVIDER}),
    (S.UNKNOWN, S.UNDELIVERED): frozenset({Actor.PROVIDER}),
    (S.SENT, S.UNDELIVERED): frozenset({Actor.PROVIDER}),
    (S.DELIVERED, S.UNDELIVERED): frozenset({Actor.PROVIDER}),
}
# A delivery is created in one of these (app/ledger/deliveries.py NewDelivery).
INITIAL = (S.PENDING, S.SKIPPED)


@dataclass(frozen=True)
class Transition:
    actor: Actor
    sources: frozenset[S]
    targets: frozenset[S]


def allowed(actor: Actor, source: S, target: S) -> bool:
    return actor in TRANSITIONS.get((source, target), frozenset())


def move(
    actor: Actor,
    sources: Collection[S],
    targets: S | Collection[S],
    *where: ColumnElement[bool],
    **values: Any,
) -> Update:
    """An UPDATE moving deliveries in `sources` (and matching `where`) to a target status.

    One target: the statement sets it. Several: the statement takes it as the `b_status`
    parameter, and the guard checks the value given is one of them. Raises IllegalTransition
    here, when the statement is built (mostly at import), for a move the table does not allow.
    """
    single = isinstance(targets, S)
    wanted = frozenset({targets} if isinstance(targets, S) else targets)
    for source in sources:
        for target in wanted:
            if not allowed(actor, source, target):
                raise IllegalTransition(f"{actor} may not move a delivery {source} -> {target}")
    status: Any = targets if single else bindparam(STATUS_PARAM)
    statement = (
        update(DELIVERIES)
        .where(one_of(DELIVERIES.c.status, sources), *where)
        .values(status=status, **values)
    )
    return statement.execution_options(
        delivery_transition=Transition(actor, frozenset(sources), wanted)
    )


def guard(
    connection: Connection,
    clauseelement: Any,
    multiparams: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    execution_options: Mapping[str, Any],
) -> None:
    """The engine's before_execute hook: an UPDATE of deliveries.status (the statement itself,
    or a data-modifying WITH it carries) must come from `move`, and a status given as a
    parameter must be one its transition allows."""
    check(clauseelement, [*multiparams, params])


def check(clauseelement: Any, given: Sequence[Mapping[str, Any]]) -> None:
    """The guard's check of one execution, for a statement run beside the engine's hooks
    (app/ledger/base.py: `LedgerBase._alone`)."""
    for statement in _statements(clauseelement):
        _check(statement, given)


def _statements(clauseelement: Any) -> list[Update]:
    found = [clauseelement] if isinstance(clauseelement, Update) else []
    for cte in getattr(clauseelement, "_independent_ctes", ()):  # .add_cte(...)
        if isinstance(cte.element, Update):
            found.append(cte.element)
    return [each for each in found if getattr(each.table, "name", None) == DELIVERIES.name]


def _check(statement: Update, given: Sequence[Mapping[str, Any]]) -> None:
    values = _set_values(statement)
    # The ORM's flush sets columns through parameters, not .values().
    status_set = "status" in values or (not values and any("status" in each for each in given))
    if not status_set:
        return
    transition = statement.get_execution_options().get("delivery_transition")
    if not isinstance(transition, Transition):
        raise IllegalTransition(
            "an UPDATE of deliveries.status outside app/ledger/delivery_states.py"
        )
    value = values.get("status")
    if not isinstance(value, BindParameter):
        return
    bound = [each[value.key] for each in given if value.key in each]
    if not bound and value.value is not None:
        bound = [value.value]
    for status in bound:
        if status not in transition.targets:
            raise IllegalTransition(
                f"{transition.actor} may not move a delivery to {status}: "
                f"this statement allows {sorted(transition.targets)}"
            )


def _set_values(statement: Update) -> dict[str, Any]:
    raw: Mapping[Any, Any] = statement._values or {}
    found: dict[str, Any] = {}
    for key, value in raw.items():
        name = key if isinstance(key, str) else getattr(key, "key", None)
        if name is not None:
            found[name] = value
    return found
