"""A delivery as people and other systems read it: its fields and its timeline (planned, each
attempt, each status the provider reported), with phone numbers and emails masked. Never the
PIN or the Instant Key URL: the ledger does not hold them, and provider error texts, which
may quote a number, are masked again here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.ledger.models import Delivery, ProviderEvent
from app.observability.masking import mask_text


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime | None
    source: str  # keycourier, or the provider that reported
    what: str
    status: str
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "source": self.source,
            "what": self.what,
            "status": self.status,
            "detail": self.detail,
        }


def timeline(delivery: Delivery, reports: list[ProviderEvent]) -> list[TimelineEntry]:
    planned_to = delivery.planned_destination_masked
    entries = [
        TimelineEntry(
            delivery.created_at,
            "keycourier",
            "planned",
            "pending",
            f"to {planned_to}" if planned_to else None,
        )
    ]
    for number, attempt in enumerate(delivery.attempts, start=1):
        parts = [_went_to(attempt.destination_masked, planned_to)]
        parts.append(_error(attempt.error_code, attempt.error_message))
        if attempt.duration_ms is not None:
            parts.append(f"{attempt.duration_ms} ms")
        detail = "; ".join(part for part in parts if part) or None
        entries.append(
            TimelineEntry(
                attempt.started_at,
                attempt.provider,
                f"attempt {number}",
                attempt.outcome,
                detail,
            )
        )
    for report in reports:
        entries.append(
            TimelineEntry(
                report.occurred_at or report.received_at,
                report.provider,
                "status report",
                report.status,
                _error(report.error_code, None),
            )
        )
    return sorted(entries, key=lambda entry: (entry.at is None, entry.at or datetime.min))


def _went_to(destination: str | None, planned: str | None) -> str | None:
    """Where an attempt went, and whether that is not where the delivery was planned to go
    (the guest's phone number or email address changed in Seam in between)."""
    if destination is None:
        return None
    if planned is not None and destination != planned:
        return f"to {destination}, not the planned {planned}: the guest's contact changed"
    return f"to {destination}"


def delivery_json(delivery: Delivery, hotel: str | None) -> dict[str, Any]:
    """The delivery for the API; `hotel` is its hotel's name (properties.toml), if named."""
    return {
        "id": delivery.id,
        "hotel": hotel,
        "workspace_id": delivery.workspace_id,
        "space_ids": list(delivery.space_id_list),
        "kind": delivery.kind,
        "channel": delivery.channel,
        "status": delivery.status,
        "guest_name": delivery.guest_name,
        "reservation": delivery.reservation,
        # Where its latest attempt went (where it was planned to go, before any).
        "destination": delivery.destination_masked,
        "planned_destination": delivery.planned_destination_masked,
        "access_method_id": delivery.access_method_id,
        "access_grant_id": delivery.access_grant_id,
        "error_code": delivery.error_code,
        "error_message": _masked(delivery.error_message),
        "attempts": len(delivery.attempts),
        "fallback_for_id": delivery.fallback_for_id,
        "created_at": _iso(delivery.created_at),
        "updated_at": _iso(delivery.updated_at),
        "sent_at": _iso(delivery.sent_at),
    }


def error_text(delivery: Delivery) -> str | None:
    return _error(delivery.error_code, delivery.error_message)


def _error(code: str | None, message: str | None) -> str | None:
    parts = [part for part in (code, _masked(message)) if part]
    return ": ".join(parts) or None


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
