"""The benchmark table: every figure beside its target, for the defaults and the tuned run.

The default column is what a user gets (the Procfile's lines as they are, info logs); its
FAILs make `bench/run` exit non-zero. The tuned column (LOG_LEVEL=WARNING, 64 threads) shows
what tuning buys; it is never a failure. The single-machine figures and the second worker
process follow, as information.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.ingest import IngestResult
from bench.pipeline import EndToEndResult, Second, WorkerResult

# The targets (issue 18).
WORKER_MIN_PER_SECOND = 150.0  # one worker process; Seam at 50 ms, Twilio and SendGrid at 100 ms
WORKER_CPU_MAX_MS = 6.5  # per delivery, the same process
INGEST_RATIO_MIN = 0.30  # of the bare endpoint's requests/s, PostgreSQL + Redis
INGEST_P99_MAX_MS = 20.0  # at 64 connections
LOOP_BLOCK_MAX_MS = 5.0
END_TO_END_P99_MAX_MS = 50.0  # at 100 events/s, stand-ins answering at once
WEB_RSS_MAX_MB = 120.0
WORKER_RSS_MAX_MB = 200.0
# A second worker process should nearly double deliveries/s, given a core of its own: judged
# only on a machine with cores to spare beyond the two workers (the services, the stand-ins
# and the load run here too).
SCALING_MIN_RATIO = 1.7
SCALING_MIN_CPUS = 4


@dataclass
class Run:
    """One configuration's figures."""

    name: str
    ingest: IngestResult | None = None
    end_to_end: EndToEndResult | None = None
    worker: WorkerResult | None = None


Cell = tuple[str, bool | None]
Check = Callable[[Run], Cell | None]


@dataclass
class Report:
    commit: str
    numbers: str  # what was measured with: events, rates, durations
    default: Run
    tuned: Run | None = None
    two_workers: WorkerResult | None = None
    single_ingest: IngestResult | None = None
    single_end_to_end: EndToEndResult | None = None
    cpus: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def table(self) -> str:
        runs = [self.default, *([self.tuned] if self.tuned else [])]
        header = ("figure", "target", *(c for run in runs for c in (run.name, "")))
        self.rows = [header]
        for name, target, check in CHECKS:
            cells = [check(run) for run in runs]
            if all(cell is None for cell in cells):
                continue
            row = [name, target]
            for cell in cells:
                value, ok = cell if cell is not None else ("-", None)
                row += [value, "" if ok is None else ("PASS" if ok else "FAIL")]
            self.rows.append(tuple(row))
        lines = [f"keycourier benchmarks at {self.commit} ({self.cpus} CPUs); {self.numbers}"]
        lines += _aligned(self.rows)
        extra = self._extra_rows()
        if extra:
            lines += ["", "information (no target unless shown):"]
            lines += _aligned([("figure", "measured", "target", ""), *extra])
        for run in runs:
            if run.end_to_end is not None and run.end_to_end.seconds:
                lines += ["", f"end to end second by second ({run.name}), by when posted:"]
                lines += _timeline(run.end_to_end.seconds)
        return "\n".join(line.rstrip() for line in lines)

    def default_failures(self) -> list[str]:
        """The default column's FAILs (the table must have been built)."""
        return [row[0] for row in self.rows[1:] if row[3] == "FAIL"]

    def _extra_rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        one, two = self.default.worker, self.two_workers
        if two is not None:
            rows.append((
                "two worker processes (WORKER_PROCESSES=2): deliveries/s, CPU per delivery",
                f"{two.per_second:.0f}/s, {two.cpu_ms_per_delivery:.1f} ms",
                "", "",
            ))  # fmt: skip
            if one is not None and one.per_second > 0:
                ratio = two.per_second / one.per_second
                judged = self.cpus >= SCALING_MIN_CPUS
                rows.append((
                    "  ratio to one process",
                    f"{ratio:.2f}x",
                    f">= {SCALING_MIN_RATIO}x"
                    + ("" if judged else f" (judged on {SCALING_MIN_CPUS}+ CPUs)"),
                    ("PASS" if ratio >= SCALING_MIN_RATIO else "FAIL") if judged else "",
                ))  # fmt: skip
        if (r := self.single_ingest) is not None:
            rows.append((
                "single machine (SQLite, embedded broker, serve + its worker): ingest",
                f"{r.keycourier.rps:,.0f} req/s ({r.ratio:.0%} of bare), "
                f"p50 / p99 {r.keycourier.p50_ms:.0f} / {r.keycourier.p99_ms:.0f} ms, "
                f"{_errors(r)} errors",
                "", "",
            ))  # fmt: skip
            rows.append(("  web peak RSS", f"{r.web_peak_rss_mb:.0f} MB", "", ""))
        if (e := self.single_end_to_end) is not None:
            rows.append((
                f"single machine: end to end at {e.rate:.0f} events/s",
                f"{e.received}/{e.events} SMS ({e.sustained:.0f}/s sustained), p50 / p99 / max "
                f"{_ms(e.p50_ms)} / {_ms(e.p99_ms)} / {_ms(e.max_ms)}",
                "", "",
            ))  # fmt: skip
            rows.append((
                "  web / worker peak RSS",
                f"{e.web_peak_rss_mb:.0f} / {e.worker_peak_rss_mb:.0f} MB",
                "", "",
            ))  # fmt: skip
        return rows


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _timeline(seconds: tuple[Second, ...]) -> list[str]:
    """One row a second: the events posted in it, their latency, and the cores used meanwhile
    (the worker's, the web process's, and the share of the machine busy, whoever used it)."""
    header = ("second", "events", "p50", "max", "worker cores", "web cores", "machine busy")
    rows = [
        (str(s.second), str(s.events), _ms(s.p50_ms), _ms(s.max_ms),
         f"{s.worker_cores:.2f}", f"{s.web_cores:.2f}", f"{s.machine_busy:.0%}")
        for s in seconds
    ]  # fmt: skip
    return _aligned([header, *rows])


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"


def _errors(r: IngestResult) -> int:
    return r.keycourier.non_2xx + r.keycourier.socket_errors + r.keycourier.wrapped


def _worker_rate(run: Run) -> Cell | None:
    w = run.worker
    return None if w is None else (f"{w.per_second:.0f}", w.per_second >= WORKER_MIN_PER_SECOND)


def _worker_cpu(run: Run) -> Cell | None:
    w = run.worker
    if w is None:
        return None
    return f"{w.cpu_ms_per_delivery:.1f} ms", w.cpu_ms_per_delivery <= WORKER_CPU_MAX_MS


def _worker_rss(run: Run) -> Cell | None:
    w = run.worker
    return None if w is None else (f"{w.peak_rss_mb:.0f} MB", w.peak_rss_mb < WORKER_RSS_MAX_MB)


def _ingest_ratio(run: Run) -> Cell | None:
    r = run.ingest
    if r is None:
        return None
    return (
        f"{r.ratio:.0%} ({r.keycourier.rps:,.0f} / {r.bare.rps:,.0f} req/s)",
        r.ratio >= INGEST_RATIO_MIN,
    )


def _ingest_p99(run: Run) -> Cell | None:
    r = run.ingest
    if r is None:
        return None
    k = r.keycourier
    return f"{k.p50_ms:.1f} / {k.p99_ms:.1f} ms", k.p99_ms < INGEST_P99_MAX_MS


def _ingest_errors(run: Run) -> Cell | None:
    return None if run.ingest is None else (str(_errors(run.ingest)), _errors(run.ingest) == 0)


def _loop_block(run: Run) -> Cell | None:
    b = run.ingest.blocks if run.ingest else None
    if b is None:
        return None
    value = (
        f"{b.longest_ms:.1f} ms ({b.count} over {b.threshold_ms:g})"
        if b.count
        else (f"none over {b.threshold_ms:g} ms")
    )
    if b.outside_load:
        value += f"; {b.outside_load} at start-up or shutdown"
    return value, b.longest_ms < LOOP_BLOCK_MAX_MS


def _web_rss(run: Run) -> Cell | None:
    peaks = [r.web_peak_rss_mb for r in (run.ingest, run.end_to_end) if r is not None]
    return None if not peaks else (f"{max(peaks):.0f} MB", max(peaks) < WEB_RSS_MAX_MB)


def _e2e_received(run: Run) -> Cell | None:
    e = run.end_to_end
    return None if e is None else (f"{e.received}/{e.events}", e.received == e.events)


def _e2e_latency(run: Run) -> Cell | None:
    e = run.end_to_end
    if e is None:
        return None
    return f"{_ms(e.p50_ms)} / {_ms(e.p99_ms)}", e.p99_ms < END_TO_END_P99_MAX_MS


def _e2e_worker_rss(run: Run) -> Cell | None:
    e = run.end_to_end
    if e is None:
        return None
    return f"{e.worker_peak_rss_mb:.0f} MB", e.worker_peak_rss_mb < WORKER_RSS_MAX_MB


CHECKS: list[tuple[str, str, Check]] = [
    ("worker deliveries/s (one process)", f">= {WORKER_MIN_PER_SECOND:.0f}", _worker_rate),
    ("worker CPU per delivery", f"<= {WORKER_CPU_MAX_MS} ms", _worker_cpu),
    ("worker peak RSS", f"< {WORKER_RSS_MAX_MB:.0f} MB", _worker_rss),
    ("ingest /webhooks/seam, ratio to bare", f">= {INGEST_RATIO_MIN:.0%}", _ingest_ratio),
    ("ingest p50 / p99 at 64 connections", f"p99 < {INGEST_P99_MAX_MS:.0f} ms", _ingest_p99),
    ("ingest errors, non-2xx, repeats", "0", _ingest_errors),
    (
        "ingest longest event-loop callback (debug run)",
        f"< {LOOP_BLOCK_MAX_MS:.0f} ms",
        _loop_block,
    ),
    ("end to end at 100 events/s: SMS received", "all", _e2e_received),
    ("end to end p50 / p99", f"p99 < {END_TO_END_P99_MAX_MS:.0f} ms", _e2e_latency),
    ("web peak RSS (ingest, end to end)", f"< {WEB_RSS_MAX_MB:.0f} MB", _web_rss),
    ("worker peak RSS (end to end)", f"< {WORKER_RSS_MAX_MB:.0f} MB", _e2e_worker_rss),
]
