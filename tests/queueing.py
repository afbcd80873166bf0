"""What the worker's tasks do with the work a domain call returns, for in-process tests: the
queue is a list the test reads (a RecordingEnqueuer), and `sent_ids` picks the deliveries out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.context import Context
from app.delivery.compose import SeamState
from app.delivery.send import Outcome, send_delivery
from app.ledger.store import Claimed
from app.ports import Queued, Work


def sent_ids(work: Iterable[Queued]) -> list[int]:
    """The deliveries in `work` to send (now or later)."""
    return [queued.id for queued in work if queued.work is Work.SEND_DELIVERY]


@dataclass
class RecordingEnqueuer:
    """An Enqueuer whose queue is three lists: events, deliveries to send, undelivered."""

    events: list[int] = field(default_factory=list)
    sends: list[int] = field(default_factory=list)
    undelivered: list[int] = field(default_factory=list)

    def enqueue_events(self, event_ids: Sequence[int]) -> None:
        self.events.extend(event_ids)

    def enqueue(self, work: Sequence[Queued]) -> None:
        for queued in work:
            if queued.work is Work.PROCESS_EVENT:
                self.events.append(queued.id)
            elif queued.work is Work.SEND_DELIVERY:
                self.sends.append(queued.id)
            else:
                self.undelivered.append(queued.id)

    def ping(self) -> None:
        pass


def send_and_hand_on(
    context: Context,
    delivery_id: int,
    handed: list[int],
    state: SeamState | None = None,
    claimed: Claimed | None = None,
) -> Outcome:
    """Send one delivery as the worker's task would; the deliveries it leaves to send (a
    fallback, the front desk's alert) land in `handed`."""
    outcome = send_delivery(context, delivery_id, state, claimed)
    handed.extend(sent_ids(outcome.next))
    return outcome
