"""Two workers and the sweeper against one ledger, interleaved at random: never two provider
calls for one delivery.

Each seed plays a schedule of steps on a travelling clock (no step waits, none races the
load): a worker claims, records its attempt through the fence and calls the provider (the
call ends inside the lease it was made under, as PROVIDER_TIMEOUT_SECONDS < lease guarantees),
or records the answer; a worker's heartbeat renews its claim, or does not (a stalled process);
a worker dies and forgets what it held; time passes; the sweeper takes back expired leases.
A worker that claims an `unknown` delivery asks the provider, as app/delivery/send.py does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from app.ledger.models import AttemptOutcome, DeliveryStatus
from app.ledger.store import AttemptEnd, Claimed, Finished, InFlight, Ledger, NewDelivery

LEASE = timedelta(seconds=15)
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SEEDS = {"sqlite": 300, "postgresql": 120}


@dataclass
class Provider:
    """What the provider received: one message id per call, by delivery."""

    calls: dict[int, list[str]] = field(default_factory=dict)

    def send(self, delivery_id: int) -> str:
        sid = f"SM{delivery_id}-{len(self.calls.get(delivery_id, []))}"
        self.calls.setdefault(delivery_id, []).append(sid)
        return sid


@dataclass
class Worker:
    ledger: Ledger
    provider: Provider
    claim: Claimed | None = None
    attempt: InFlight | None = None
    sid: str | None = None

    def step(self, delivery_id: int) -> None:
        if self.attempt is not None:
            self._finish()
        elif self.claim is not None:
            self._call()
        else:
            self.claim = self.ledger.claim_delivery(delivery_id, LEASE)

    def heartbeat(self) -> None:
        if self.claim is not None:
            self.ledger.renew_leases([self.claim.token], LEASE)

    def die(self) -> None:
        self.claim = self.attempt = None
        self.sid = None

    def _call(self) -> None:
        claim = self.claim
        assert claim is not None
        if claim.unresolved is not None:
            sent = self.provider.calls.get(claim.delivery.id)
            found = sent[-1] if sent else None
            settled = self.ledger.settle_unknown(claim, claim.unresolved.id, found)
            if settled is Finished.LOST or found is not None:
                self.die()
                return
        attempt = self.ledger.begin_attempt(claim, "twilio", None, LEASE)
        if attempt is None:
            self.die()  # the claim was taken back: no call
            return
        self.attempt = attempt
        self.sid = self.provider.send(claim.delivery.id)

    def _finish(self) -> None:
        assert self.attempt is not None
        self.ledger.finish_attempt(
            self.attempt, AttemptEnd(AttemptOutcome.SENT, DeliveryStatus.SENT, self.sid)
        )
        self.die()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_two_workers_and_the_sweeper_never_call_the_provider_twice(
    ledger: Ledger, database_url: str
) -> None:
    """Under any interleaving of claims, fenced attempts, heartbeats (or their absence), worker
    deaths, time and sweeps, each delivery reaches the provider at most once, and ends sent."""
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    provider = Provider()
    with time_machine.travel(START, tick=False) as clock:
        for seed in range(SEEDS[backend]):
            rng = random.Random(seed)
            delivery_id = _planned(ledger, f"fp-{seed}")
            workers = [Worker(ledger, provider), Worker(ledger, provider)]
            for _ in range(rng.randint(5, 40)):
                _random_step(rng, ledger, workers, delivery_id, clock)
                assert len(provider.calls.get(delivery_id, [])) <= 1, f"seed {seed}"
            _run_to_the_end(ledger, workers[0], delivery_id, clock)
            assert len(provider.calls.get(delivery_id, [])) == 1, f"seed {seed}"
            delivery = ledger.get_delivery(delivery_id)
            assert delivery is not None
            assert delivery.status == DeliveryStatus.SENT, f"seed {seed}"


def _random_step(
    rng: random.Random,
    ledger: Ledger,
    workers: list[Worker],
    delivery_id: int,
    clock: time_machine.Traveller,
) -> None:
    worker = rng.choice(workers)
    action = rng.choices(["step", "heartbeat", "die", "time", "sweep"], weights=[5, 3, 1, 3, 2])[0]
    if action == "step":
        worker.step(delivery_id)
    elif action == "heartbeat":
        worker.heartbeat()
    elif action == "die":
        worker.die()
    elif action == "time":
        clock.shift(timedelta(seconds=rng.uniform(0, LEASE.total_seconds())))
    else:
        ledger.recover_expired_leases(datetime.now(UTC))


def _run_to_the_end(
    ledger: Ledger, worker: Worker, delivery_id: int, clock: time_machine.Traveller
) -> None:
    """Whatever was left half-done: the lease runs out, the sweeper takes it back, and one
    living worker finishes the delivery."""
    for _ in range(10):
        delivery = ledger.get_delivery(delivery_id)
        assert delivery is not None
        if delivery.status == DeliveryStatus.SENT and worker.attempt is None:
            return
        clock.shift(LEASE + timedelta(seconds=1))
        ledger.recover_expired_leases(datetime.now(UTC))
        for _ in range(3):
            worker.step(delivery_id)


def _planned(ledger: Ledger, fingerprint: str) -> int:
    delivery_id, created = ledger.plan_delivery(
        NewDelivery(
            access_method_id="am-1",
            kind="pin_code",
            channel="sms",
            credential_fingerprint=fingerprint,
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
