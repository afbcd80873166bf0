"""The guest link's resends are counted per stay in the ledger: never more than the limit, even
when requests arrive at the same instant, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from app.ledger.guest_links import MAX_STAY_KEY, GuestLinkStore, stay_key
from app.ledger.store import Ledger

NOW = datetime(2031, 6, 20, 15, 0, tzinfo=UTC)


def test_a_stay_gets_its_limit_and_no_more(ledger: Ledger) -> None:
    """Slots 1..N are taken, the N+1th is refused and takes nothing; another stay (another
    grant, or another guest of the same grant) counts on its own."""
    counts = GuestLinkStore(ledger.engine)
    stay = stay_key("grant-1", "method-1", "guest-1")
    assert [counts.take_resend(stay, 3, now=NOW) for _ in range(4)] == [1, 2, 3, None]
    assert counts.resends_used(stay) == 3
    assert counts.take_resend(stay_key("grant-1", "method-1", "guest-2"), 3, now=NOW) == 1
    assert counts.take_resend(stay_key("grant-2", "method-1", "guest-1"), 3, now=NOW) == 1
    assert counts.take_resend(stay_key(None, "method-1", "guest-1"), 3, now=NOW) == 1
    assert counts.resends_used(stay) == 3


def test_a_slot_given_back_can_be_taken_again(ledger: Ledger) -> None:
    """A resend that sent nothing gives its slot back; giving back never goes below zero."""
    counts = GuestLinkStore(ledger.engine)
    stay = stay_key("grant-1", "method-1", "guest-1")
    assert counts.take_resend(stay, 1, now=NOW) == 1
    assert counts.take_resend(stay, 1, now=NOW) is None
    counts.give_back_resend(stay)
    assert counts.take_resend(stay, 1, now=NOW) == 1
    counts.give_back_resend(stay)
    counts.give_back_resend(stay)
    assert counts.resends_used(stay) == 0
    counts.give_back_resend("a stay never counted")
    assert counts.resends_used("a stay never counted") == 0


def test_requests_at_the_same_instant_never_take_more_than_the_limit(ledger: Ledger) -> None:
    """Twelve threads (each its own connection) ask at once, against a limit of 3: exactly three
    get a slot, numbered 1, 2 and 3."""
    counts = GuestLinkStore(ledger.engine)
    stay = stay_key("grant-1", "method-1", "guest-1")
    start = threading.Barrier(12)
    taken: list[int | None] = []
    lock = threading.Lock()

    def ask() -> None:
        start.wait()
        got = counts.take_resend(stay, 3, now=NOW)
        with lock:
            taken.append(got)

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t for t in taken if t is not None) == [1, 2, 3]
    assert taken.count(None) == 9
    assert counts.resends_used(stay) == 3


def test_a_stay_key_fits_its_column(ledger: Ledger) -> None:
    """Ids as long as Seam's columns allow still make a key the ledger keeps."""
    counts = GuestLinkStore(ledger.engine)
    stay = stay_key("g" * 100, "m" * 100, "u" * 100)
    assert len(stay) <= MAX_STAY_KEY
    assert counts.take_resend(stay, 1, now=NOW) == 1
