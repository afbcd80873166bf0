"""The benchmark table: every figure beside its target, PASS or FAIL."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.ingest import IngestResult
from bench.pipeline import EndToEndResult, WorkerResult

# The targets (issue 4). Each is checked where its figure is printed.
INGEST_RATIO_MIN = 0.25  # of the bare endpoint's requests/s, PostgreSQL + Redis
INGEST_P99_MAX_MS = 20.0  # at 64 connections
LOOP_BLOCK_MAX_MS = 5.0
END_TO_END_P99_MAX_MS = 50.0  # at 100 events/s, stand-ins answering at once
WORKER_MIN_PER_SECOND = 150.0  # Seam at 50 ms, Twilio at 100 ms
WEB_RSS_MAX_MB = 120.0
WORKER_RSS_MAX_MB = 200.0


@dataclass
class Report:
    commit: str
    ingest: list[IngestResult] = field(default_factory=list)
    end_to_end: EndToEndResult | None = None
    end_to_end_unsaturated: EndToEndResult | None = None
    worker: WorkerResult | None = None
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def table(self) -> str:
        self.rows = [("figure", "measured", "target", "")]
        for result in self.ingest:
            self._ingest_rows(result)
        if self.end_to_end is not None:
            self._end_to_end_rows(self.end_to_end)
        if self.end_to_end_unsaturated is not None:
            r = self.end_to_end_unsaturated
            self._row(
                f"end to end at {r.rate:.0f} events/s (no target): received, p50 / p99 / max",
                f"{r.received}/{r.events}, {r.p50_ms:.0f} / {r.p99_ms:.0f} / {r.max_ms:.0f} ms",
            )
        if self.worker is not None:
            self._worker_rows(self.worker)
        widths = [max(len(row[i]) for row in self.rows) for i in range(4)]
        lines = [f"keycourier benchmarks at {self.commit}"]
        for n, row in enumerate(self.rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    def all_pass(self) -> bool:
        return all(row[3] != "FAIL" for row in self.rows)

    def _row(self, name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((name, value, target, verdict))

    def _ingest_rows(self, r: IngestResult) -> None:
        gated = r.label.startswith("PostgreSQL")  # the targets are set for the production set-up
        self._row(f"ingest [{r.label}] bare req/s", f"{r.bare.rps:,.0f}")
        self._row(
            f"ingest [{r.label}] bare p50 / p99",
            f"{r.bare.p50_ms:.1f} / {r.bare.p99_ms:.1f} ms",
        )
        self._row(f"ingest [{r.label}] /webhooks/seam req/s", f"{r.keycourier.rps:,.0f}")
        self._row(
            f"ingest [{r.label}] /webhooks/seam p50 / p99",
            f"{r.keycourier.p50_ms:.1f} / {r.keycourier.p99_ms:.1f} ms",
            f"p99 < {INGEST_P99_MAX_MS:.0f} ms" if gated else "",
            r.keycourier.p99_ms < INGEST_P99_MAX_MS if gated else None,
        )
        self._row(
            f"ingest [{r.label}] ratio to bare",
            f"{r.ratio:.0%}",
            f">= {INGEST_RATIO_MIN:.0%}" if gated else "",
            r.ratio >= INGEST_RATIO_MIN if gated else None,
        )
        errors = r.keycourier.non_2xx + r.keycourier.socket_errors + r.keycourier.wrapped
        self._row(
            f"ingest [{r.label}] errors, non-2xx, repeats",
            str(errors),
            "0",
            errors == 0,
        )
        self._row(
            f"ingest [{r.label}] event-loop timer lag (whole iterations, OS scheduling)",
            f"{r.loop_lag_max_ms:.1f} ms",
        )
        if r.blocks is not None:
            b = r.blocks
            self._row(
                f"ingest [{r.label}] longest event-loop callback (asyncio debug run, "
                f"{b.requests:,} requests; {b.count} over {b.threshold_ms:g} ms)",
                f"{b.longest_ms:.1f} ms" if b.count else f"none over {b.threshold_ms:g} ms",
                f"< {LOOP_BLOCK_MAX_MS:.0f} ms",
                b.longest_ms < LOOP_BLOCK_MAX_MS,
            )
        self._row(
            f"ingest [{r.label}] web peak RSS",
            f"{r.web_peak_rss_mb:.0f} MB",
            f"< {WEB_RSS_MAX_MB:.0f} MB",
            r.web_peak_rss_mb < WEB_RSS_MAX_MB,
        )

    def _end_to_end_rows(self, r: EndToEndResult) -> None:
        self._row(
            "end to end: events sent / SMS received",
            f"{r.events} / {r.received}",
            "all",
            r.received == r.events,
        )
        self._row(
            "end to end p50 / p99 / max",
            f"{r.p50_ms:.0f} / {r.p99_ms:.0f} / {r.max_ms:.0f} ms",
            f"p99 < {END_TO_END_P99_MAX_MS:.0f} ms",
            r.p99_ms < END_TO_END_P99_MAX_MS,
        )
        self._row(
            "end to end web / worker peak RSS",
            f"{r.web_peak_rss_mb:.0f} / {r.worker_peak_rss_mb:.0f} MB",
            f"< {WEB_RSS_MAX_MB:.0f} / {WORKER_RSS_MAX_MB:.0f} MB",
            r.web_peak_rss_mb < WEB_RSS_MAX_MB and r.worker_peak_rss_mb < WORKER_RSS_MAX_MB,
        )

    def _worker_rows(self, r: WorkerResult) -> None:
        self._row(
            f"worker deliveries/s ({r.pool})",
            f"{r.per_second:.0f}",
            f">= {WORKER_MIN_PER_SECOND:.0f}",
            r.per_second >= WORKER_MIN_PER_SECOND,
        )
        self._row("worker CPU per delivery", f"{r.cpu_ms_per_delivery:.1f} ms")
        self._row(
            "worker peak RSS",
            f"{r.peak_rss_mb:.0f} MB",
            f"< {WORKER_RSS_MAX_MB:.0f} MB",
            r.peak_rss_mb < WORKER_RSS_MAX_MB,
        )
