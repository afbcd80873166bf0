"""How many times each guest had their key sent again through their own link (app/guest/).
The only writer of `guest_link_resends`.

A resend takes a slot with one upsert whose WHERE holds the whole condition (fewer than the
limit used), never read-then-write: two requests at the same instant, in any number of web
processes, cannot both take the last slot, on SQLite and PostgreSQL alike. A request that sent
nothing (refused, or Seam unreachable) gives its slot back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.ledger.base import LedgerBase
from app.ledger.models import GuestLinkResends

MAX_STAY_KEY = 210


def stay_key(access_grant_id: str | None, access_method_id: str, recipient: str) -> str:
    """One guest's stay, as the count is kept: the grant (else the access method) and the
    guest."""
    return f"{access_grant_id or 'method:' + access_method_id}/{recipient}"[:MAX_STAY_KEY]


class GuestLinkStore(LedgerBase):
    def take_resend(self, key: str, limit: int, *, now: datetime) -> int | None:
        """Take one of the stay's `limit` resends: how many are used with it, or None (nothing
        taken) when all are."""
        if limit < 1:
            return None
        row = GuestLinkResends
        with self._connection() as connection:
            upsert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = (
                upsert(row)
                .values(stay_key=key, used=1, first_at=now, last_at=now)
                .on_conflict_do_update(
                    index_elements=[row.stay_key],
                    set_={"used": row.used + 1, "last_at": now},
                    where=row.used < limit,
                )
                .returning(row.used)
            )
            used = connection.execute(statement).scalar()
        return None if used is None else int(used)

    def give_back_resend(self, key: str) -> None:
        """A resend that sent nothing: its slot is free again."""
        row = GuestLinkResends
        with self._connection() as connection:
            connection.execute(
                update(row).where(row.stay_key == key, row.used > 0).values(used=row.used - 1)
            )

    def resends_used(self, key: str) -> int:
        with self._connection() as connection:
            used = connection.execute(
                select(GuestLinkResends.used).where(GuestLinkResends.stay_key == key)
            ).scalar()
        return int(used or 0)
