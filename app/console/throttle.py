"""What a sign-in may cost the web process, the one that also takes Seam's webhooks.

A password check is scrypt: about 0.1 s of CPU and 32 MiB of memory (app/console/passwords.py).
Left to the thread pool, 60 sign-ins at once ran 40 checks at once and took the process from
167 MB to 1.44 GB. `PasswordChecks` runs at most OPS_SIGN_IN_CONCURRENCY checks at once and lets
at most OPS_SIGN_IN_QUEUE more sign-ins wait for one; any further sign-in is refused at once
(503 with Retry-After), before it touches the ledger. An unknown name's check (the decoy) goes
through the same gate and costs the same, so timing tells no more about which names exist.

`address_key` is what the per-address lockout counts under: the client's IP address (as uvicorn
reports it: behind a proxy, run `keycourier serve --forwarded-allow-ips`), an IPv6 address by
its /64, which one host usually holds whole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from app.errors import SignInBusy

# Sign-ins refused as busy are logged as a count, at most this often: a flood is one line a
# minute, not one per request.
REPORT_EVERY_SECONDS = 60.0


class PasswordChecks:
    def __init__(self, concurrency: int, queue: int) -> None:
        self._concurrency = concurrency
        self._admitted_limit = concurrency + queue
        self._admitted = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._refused = 0
        self._reported_at = -REPORT_EVERY_SECONDS

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """A place for one sign-in, held for all of it; `SignInBusy` at once when there is none.
        Runs on the event loop only, so counting needs no lock."""
        if self._admitted >= self._admitted_limit:
            self._refused += 1
            raise SignInBusy
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    @asynccontextmanager
    async def checking(self) -> AsyncIterator[None]:
        """One of the OPS_SIGN_IN_CONCURRENCY password checks; waits for it (the admitted are
        few, so the wait is short)."""
        if self._semaphore is None:  # made on the event loop that uses it
            self._semaphore = asyncio.Semaphore(self._concurrency)
        async with self._semaphore:
            yield

    def refused_to_report(self) -> int:
        """How many sign-ins were refused as busy since the last report, when a report is due
        (0 otherwise)."""
        now = time.monotonic()
        if not self._refused or now - self._reported_at < REPORT_EVERY_SECONDS:
            return 0
        refused, self._refused, self._reported_at = self._refused, 0, now
        return refused


def client_address(request: Request) -> str:
    """The client's address as the lockout counts it: an IPv6 address by its /64."""
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
