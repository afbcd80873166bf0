"""What a provider's status report means for a delivery, and what follows when it failed.

"sent" used to mean "the provider accepted it". Twilio's status callbacks and SendGrid's Event
Webhook say more: the message reached the phone or the mailbox (`delivered`), or it never will
(`undelivered`: Twilio's undelivered and failed, SendGrid's bounce and dropped). An undelivered
guest message gets what a failed send gets (app/delivery/fallback.py): the other channel, else a
front-desk alert, planned by a worker (app/delivery/undelivered.py) because it reads the guest from
Seam. This module is the web side's: recording a report, off the event loop.
"""

from __future__ import annotations

import logging

from app.ledger.models import MAX_ROW_ID, DeliveryStatus, ProviderEventStatus
from app.ledger.provider_events import ProviderReport, Reported, ReportOutcome
from app.ledger.store import Ledger

log = logging.getLogger(__name__)

TWILIO = "twilio"
SENDGRID = "sendgrid"
REFERENCE_PREFIX = "kc-"

# The provider's words keycourier records, and where each moves a delivery (None: nowhere).
TARGETS: dict[str, dict[str, DeliveryStatus | None]] = {
    TWILIO: {
        ProviderEventStatus.QUEUED: DeliveryStatus.SENT,
        ProviderEventStatus.SENT: DeliveryStatus.SENT,
        ProviderEventStatus.DELIVERED: DeliveryStatus.DELIVERED,
        ProviderEventStatus.UNDELIVERED: DeliveryStatus.UNDELIVERED,
        ProviderEventStatus.FAILED: DeliveryStatus.UNDELIVERED,
        # WhatsApp only: read implies delivered (its delivered callback may come after it)
        ProviderEventStatus.READ: DeliveryStatus.DELIVERED,
    },
    SENDGRID: {
        ProviderEventStatus.DELIVERED: DeliveryStatus.DELIVERED,
        ProviderEventStatus.DEFERRED: None,  # SendGrid keeps trying: worth a line in the timeline
        ProviderEventStatus.BOUNCE: DeliveryStatus.UNDELIVERED,
        ProviderEventStatus.DROPPED: DeliveryStatus.UNDELIVERED,
    },
}


def is_tracked(provider: str, status: str) -> bool:
    return status in TARGETS[provider]


def status_label(provider: str, status: str) -> str:
    """The provider's word as a metric label: only the words keycourier tracks."""
    return status if is_tracked(provider, status) else "other"


def delivery_id_from_reference(reference: object) -> int | None:
    """Our delivery id from the opaque reference a message carries (`kc-<id>`)."""
    if not isinstance(reference, str) or not reference.startswith(REFERENCE_PREFIX):
        return None
    number = reference.removeprefix(REFERENCE_PREFIX)
    if not (number.isascii() and number.isdigit() and len(number) <= len(str(MAX_ROW_ID))):
        return None
    return int(number) if 0 < int(number) <= MAX_ROW_ID else None


def record(ledger: Ledger, report: ProviderReport) -> Reported:
    """Store a tracked report and move its delivery forward. Blocking: run it off the loop."""
    target = TARGETS[report.provider][report.status]
    reason = None
    if target == DeliveryStatus.UNDELIVERED:
        code = f" (code {report.error_code})" if report.error_code else ""
        reason = f"{report.provider} reported it {report.status} after accepting it{code}"
    reported = ledger.record_report(report, target, reason)
    context = {"delivery_id": reported.delivery_id, "provider": report.provider}
    if reported.outcome is ReportOutcome.UNKNOWN_MESSAGE:
        log.info("%s status %s for a message not in the ledger", report.provider, report.status)
    elif reported.outcome is ReportOutcome.UNDELIVERED:
        log.warning("%s reports the message %s", report.provider, report.status, extra=context)
    else:
        log.debug("%s status %s: %s", report.provider, report.status, reported.outcome.value)
    return reported
