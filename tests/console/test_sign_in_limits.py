"""What sign-in attempts may cost, probed as an attacker would: many guesses at once against a
real `keycourier serve` (uvicorn), on SQLite and PostgreSQL.

- Guesses for one name, all at once, get at most OPS_LOCKOUT_FAILURES passwords checked (the
  slot is taken in the ledger before the check), and the right password after them is locked
  out; guesses from one address across many names get at most OPS_LOCKOUT_ADDRESS_FAILURES.
- Sixty unknown-name sign-ins at once leave the web process's memory near where it was (at
  most OPS_SIGN_IN_CONCURRENCY scrypt checks of 32 MiB run at once; the rest wait in a short
  queue or get 503 with Retry-After), and a Seam webhook posted meanwhile is answered at once.

"Checked" is counted from the audit log: every password checked writes `failed` or `ok`.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession
from starlette.testclient import TestClient

from app.ledger.console import ConsoleStore
from app.ledger.models import AuditEntry, SignInFailures, utcnow
from app.ledger.store import Ledger, make_engine
from app.settings import load_settings
from app.web.main import create_app
from tests.conftest import REDIS_URL
from tests.console.support import CSRF, NAME, PASSWORD, csrf_token, web_env
from tests.processes import post_sample, running_web

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHECKED = ("failed", "ok")


def checked_passwords(database_url: str) -> int:
    """Sign-ins whose password was checked, from the audit log."""
    engine = make_engine(database_url)
    try:
        with OrmSession(engine) as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        AuditEntry.action == "sign_in", AuditEntry.outcome.in_(CHECKED)
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


@contextmanager
def web(database_url: str, tmp_path: Path, **changes: str) -> Iterator[tuple[str, int]]:
    """`keycourier serve` on this ledger: its base URL and process id."""
    env = {**web_env(database_url, REDIS_URL), "OPS_LOCKOUT_FAILURES": "5", **changes}
    with running_web(env, tmp_path) as (base, processes):
        yield base, processes.running["web"].pid


class Form:
    """The sign-in form as a browser got it: its cookie and CSRF token, shared by every guess."""

    def __init__(self, base: str) -> None:
        page = httpx.get(f"{base}/ops/sign-in", timeout=10)
        found = CSRF.search(page.text)
        assert found is not None
        self.base, self.cookies, self.csrf = base, dict(page.cookies), found.group(1)

    def post(self, name: str, password: str, *, retry_busy: bool) -> httpx.Response:
        """One guess; with `retry_busy`, sent again after Retry-After while the answer is 503."""
        data = {"csrf_token": self.csrf, "name": name, "password": password, "next": "/ops/"}
        for _ in range(100):
            answer = httpx.post(f"{self.base}/ops/sign-in", data=data, cookies=self.cookies,
                                timeout=60, follow_redirects=False)  # fmt: skip
            if answer.status_code != 503 or not retry_busy:
                return answer
            time.sleep(float(answer.headers["retry-after"]))
        raise AssertionError("still busy after 100 tries")

    def all_at_once(
        self,
        guesses: list[tuple[str, str]],
        *,
        retry_busy: bool,
        during: Callable[[], None] = lambda: None,
    ) -> list[httpx.Response]:
        """Every guess sent at the same moment (a thread each); `during` runs meanwhile."""
        start = threading.Barrier(len(guesses) + 1)

        def send(guess: tuple[str, str]) -> httpx.Response:
            start.wait()
            return self.post(*guess, retry_busy=retry_busy)

        with ThreadPoolExecutor(len(guesses)) as pool:
            answers = [pool.submit(send, guess) for guess in guesses]
            start.wait()
            during()
            return [answer.result() for answer in answers]


def message(answer: httpx.Response) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]+)<', answer.text)
    return found.group(1) if found else ""


def test_parallel_guesses_for_one_name_check_at_most_the_lockout_count(
    database_url: str, tmp_path: Path
) -> None:
    """30 wrong passwords for one name at once (each retried while the answer is 503): exactly
    OPS_LOCKOUT_FAILURES (5) are checked, the rest are locked out, and the right password
    after them is refused too."""
    with web(database_url, tmp_path) as (base, _pid):
        form = Form(base)
        answers = form.all_at_once([(NAME, f"guess {i}") for i in range(30)], retry_busy=True)
        statuses = sorted(answer.status_code for answer in answers)
        assert checked_passwords(database_url) == 5, statuses
        assert statuses.count(401) == 4  # the fifth failure locks the name: 429
        assert statuses.count(429) == 26
        right = form.post(NAME, PASSWORD, retry_busy=True)
        assert right.status_code == 429
        assert "with this name" in message(right)
        assert int(right.headers["retry-after"]) > 60
    assert checked_passwords(database_url) == 5


def test_parallel_guesses_across_names_from_one_address_are_limited(
    database_url: str, tmp_path: Path
) -> None:
    """30 sign-ins at once, each for another name, from one address: exactly
    OPS_LOCKOUT_ADDRESS_FAILURES (8) are checked; then even the right password for a name
    never guessed is refused from that address."""
    with web(database_url, tmp_path, OPS_LOCKOUT_ADDRESS_FAILURES="8") as (base, _pid):
        form = Form(base)
        guesses = [(f"someone-{i}", "password1") for i in range(30)]
        answers = form.all_at_once(guesses, retry_busy=True)
        assert checked_passwords(database_url) == 8, [a.status_code for a in answers]
        right = form.post(NAME, PASSWORD, retry_busy=True)
        assert right.status_code == 429
        assert "from this address" in message(right)


def vm(pid: int, field: str) -> int:
    """A /proc/PID/status memory figure (VmRSS, VmHWM) in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert found is not None, field
    return int(found.group(1)) * 1024


def test_sixty_unknown_name_sign_ins_at_once_leave_memory_and_webhooks_alone(
    tmp_path: Path,
) -> None:
    """60 unknown-name sign-ins at once (no retries): the web process's peak memory grows by
    less than 150 MB (it grew by about 1.2 GB when every one ran its 32 MiB scrypt at once),
    those turned away get 503 with Retry-After, and a Seam webhook posted meanwhile gets its
    200 within 5 seconds."""
    database_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    limits = {"OPS_LOCKOUT_ADDRESS_FAILURES": "1000"}  # the address lockout is not what's tested
    with web(database_url, tmp_path, **limits) as (base, pid):
        form = Form(base)
        assert form.post("warm-up", "password", retry_busy=True).status_code == 401
        before = vm(pid, "VmRSS")
        webhook: list[tuple[int, float]] = []

        def post_a_webhook() -> None:
            time.sleep(0.3)
            started = time.monotonic()
            answer = post_sample(base, "access_method.issued.code", "msg_during_the_flood")
            webhook.append((answer.status_code, time.monotonic() - started))

        guesses = [(f"nobody-{i}", "password") for i in range(60)]
        answers = form.all_at_once(guesses, retry_busy=False, during=post_a_webhook)
        peak = vm(pid, "VmHWM")

    grown = (peak - before) / 2**20
    assert grown < 150, f"the web process grew by {grown:.0f} MiB at its peak"
    [(status, seconds)] = webhook
    assert status == 200
    assert seconds < 5
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {401, 503}, statuses
    assert 401 in statuses
    assert 503 in statuses
    assert all(a.headers.get("retry-after") for a in answers if a.status_code == 503)


# -- in-process -----------------------------------------------------------------------------


def test_slots_taken_at_once_never_exceed_the_limit(ledger: Ledger) -> None:
    """40 threads taking a slot for one name at the same moment: 5 get one, the others are
    refused, and the refused leave the address's count untouched (their transaction is
    rolled back)."""
    store = ConsoleStore(ledger.engine)
    start = threading.Barrier(40)

    def take(_: int) -> bool:
        start.wait()
        slots = store.take_sign_in_slots(
            [("address", 1000), ("name", 5)], now=utcnow(), window=timedelta(minutes=15)
        )
        return slots.granted

    with ThreadPoolExecutor(40) as pool:
        granted = list(pool.map(take, range(40)))
    assert granted.count(True) == 5
    with OrmSession(ledger.engine) as session:
        counts = {row.name_key: row.failures for row in session.scalars(select(SignInFailures))}
    assert counts == {"address": 5, "name": 5}


def test_a_slot_window_ends_and_a_match_gives_the_slot_back(ledger: Ledger) -> None:
    """A locked key opens again once its window is over; a matched password clears the name
    and gives the address its slot back."""
    store = ConsoleStore(ledger.engine)
    window, now = timedelta(minutes=15), utcnow()
    limits = [("address", 3), ("name", 2)]
    first = store.take_sign_in_slots(limits, now=now, window=window)
    second = store.take_sign_in_slots(limits, now=now, window=window)
    assert first.granted
    assert first.locks == (None, None)
    assert second.granted
    assert second.locks == (None, now + window)
    refused = store.take_sign_in_slots(limits, now=now, window=window)
    assert (refused.refused_by, refused.locked_until) == (1, now + window)
    later = store.take_sign_in_slots(limits, now=now + window, window=window)
    assert later.granted
    assert later.windows == (now + window, now + window)
    store.sign_in_succeeded("name", [("address", later.windows[0])])
    with OrmSession(ledger.engine) as session:
        counts = {row.name_key: row.failures for row in session.scalars(select(SignInFailures))}
    assert counts == {"address": 0}


def test_an_unknown_name_costs_as_much_as_a_wrong_password(ledger: Ledger, redis_url: str) -> None:
    """Timing tells nothing about which names exist: an unknown name's sign-in costs as much
    CPU as a known name's wrong password (the decoy check runs through the same gate)."""
    env = {**web_env(ledger.engine.url.render_as_string(False), redis_url),
           "OPS_LOCKOUT_FAILURES": "50"}  # fmt: skip
    with TestClient(create_app(load_settings(env), ledger=ledger)) as client:

        def seconds(name: str) -> float:
            # CPU seconds of this process (the app runs in it): what the check costs, whatever
            # else the machine is doing; wall-clock time would measure the neighbours too.
            token = csrf_token(client)
            started = time.process_time()
            answer = client.post("/ops/sign-in", data={"csrf_token": token, "name": name,
                                                       "password": "wrong"})  # fmt: skip
            assert answer.status_code == 401
            return time.process_time() - started

        known = statistics.median(seconds(NAME) for _ in range(5))
        unknown = statistics.median(seconds(f"nobody-{i}") for i in range(5))
    assert 0.5 < unknown / known < 2, (known, unknown)
