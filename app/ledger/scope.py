"""Who sees which deliveries: a console user's or API token's scope (Seam workspaces and
spaces, or everything) and a hotel's places (from properties.toml), as WHERE clauses on the
deliveries, and on the front-desk flags through their access method's deliveries.

A delivery keeps its workspace and its spaces (",id1,id2,", models.space_list); a space is
matched whole with LIKE, its id's wildcards escaped, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from app.ledger.models import Delivery, FrontDeskFlag


@dataclass(frozen=True)
class Scope:
    """The deliveries someone may see: every one (`everywhere`), else those whose Seam
    workspace is one of `workspaces` or one of whose spaces is one of `spaces`. A delivery
    whose workspace and spaces are unknown is seen only from everywhere. Every read of this
    store that can show a guest takes one."""

    everywhere: bool = False
    workspaces: frozenset[str] = frozenset()
    spaces: frozenset[str] = frozenset()


EVERYWHERE = Scope(everywhere=True)


@dataclass(frozen=True)
class HotelPlaces:
    """Where one hotel's deliveries are, as properties.toml names it (a space's name wins over
    its workspace's): in one of `spaces`, or in one of `workspaces` and in none of
    `other_spaces` (the spaces properties.toml names as another hotel)."""

    spaces: frozenset[str] = frozenset()
    workspaces: frozenset[str] = frozenset()
    other_spaces: frozenset[str] = frozenset()


def _has_space(space_id: str) -> ColumnElement[bool]:
    """The delivery lists this space (models.space_list keeps them as ",id1,id2,")."""
    escaped = space_id.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return Delivery.space_ids.like(f"%,{escaped},%", escape="\\")


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """The WHERE clause of the deliveries `scope` sees."""
    if scope.everywhere:
        return true()
    where = [_has_space(space_id) for space_id in sorted(scope.spaces)]
    if scope.workspaces:
        where.append(Delivery.workspace_id.in_(sorted(scope.workspaces)))
    return or_(*where) if where else false()


def in_hotel(hotel: HotelPlaces) -> ColumnElement[bool]:
    """The WHERE clause of one hotel's deliveries."""
    where = [_has_space(space_id) for space_id in sorted(hotel.spaces)]
    if hotel.workspaces:
        others = [_has_space(space_id) for space_id in sorted(hotel.other_spaces)]
        where.append(
            and_(
                Delivery.workspace_id.in_(sorted(hotel.workspaces)),
                *(or_(Delivery.space_ids.is_(None), ~other) for other in others),
            )
        )
    return or_(*where) if where else false()


def flag_in_scope(scope: Scope) -> ColumnElement[bool]:
    """A front-desk flag is where its access method's deliveries are (the flag's own front-desk
    message is planned with it)."""
    if scope.everywhere:
        return true()
    return (
        select(Delivery.id)
        .where(Delivery.access_method_id == FrontDeskFlag.access_method_id, in_scope(scope))
        .exists()
    )
