"""`keycourier deliveries` (and the demo's last step): recent deliveries as a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.ledger.models import Delivery, utcnow
from app.ledger.window import scheduled_until


def format_deliveries(rows: Sequence[object], hotels: Mapping[str, str] | None = None) -> str:
    """One line per delivery, in the order given; a pending delivery waiting for its time
    shows as scheduled. With `hotels` (workspace id -> name: SEAM_WORKSPACES_FILE's), a hotel
    column names each delivery's workspace."""
    header: tuple[str, ...] = ("id", "created (UTC)", "kind", "channel", "to", "status",
                               "tries", "detail")  # fmt: skip
    if hotels:
        header = (*header[:2], "hotel", *header[2:])
    lines = [header]
    now = utcnow()
    for row in rows:
        assert isinstance(row, Delivery)
        detail = row.error_code or row.error_message or row.provider_message_id or ""
        # The delivery window: a pending delivery waiting for its time shows as scheduled.
        until = scheduled_until(row, now)
        status = "scheduled" if until else row.status
        if until:
            detail = f"not before {until:%Y-%m-%d %H:%M} UTC"
        hotel = (hotels.get(row.workspace_id or "") or row.workspace_id or "-",) if hotels else ()
        lines.append(
            (
                str(row.id),
                row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                *hotel,
                row.kind,
                row.channel,
                row.destination_masked or "-",
                status,
                str(len(row.attempts)),
                detail[:60],
            )
        )
    if len(lines) == 1:
        return "no deliveries yet"
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
