"""Benchmark: a sweep of 100,000 unfinished jobs on the PostgreSQL ledger, and the order it takes.

Starts the scale-out stack as ``make serve-scaled`` does (Prefect server and ledger on the
local PostgreSQL, in databases made for the run and dropped after it; Redis messaging; two
shard workers; the emulator in simulation mode, every job already done), all on 127.0.0.1.
Submits the jobs to the emulator and records them in the ledger (one bulk insert), then
triggers the sharded sweep: ``shards=1`` on 1,000 jobs and on 100,000 (one sweep), and
``shards=2`` on 100,000 (two workers). For each: throughput over the shard runs' own span,
the peak RSS of every process of the stack (sampled from /proc), and the task runs the server
recorded against the ones the shard runs made. Before the sweeps, the plans PostgreSQL chose for
the ledger's queries a sweep makes, on the 100,000 rows.

Then, in process, the order: a backlog submitted evenly over the last 26 h (the oldest already
past the service's 24 h retention), settled in the order the ledger leases it, at the measured
rate and at a rate-limited service's 20 calls/s: how many jobs would have expired before their
turn, with the ledger's order (nearest expiry first, the expired last) and the previous one
(oldest first, the expired among them).
Run: ``make bench-100k`` (about 50 min; ``--jobs 100000 --baseline-jobs 1000``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select, text

from bench.plots import plot_sweep_100k
from ocrflow.cli.stack import Stack
from ocrflow.client import OcrClient
from ocrflow.clock import Clock
from ocrflow.errors import TransportError
from ocrflow.jobstate import JobState
from ocrflow.ledger import Ledger
from ocrflow.ledger.schema import JobRow
from ocrflow.models import RecognizeRegionsSettings, Rect, Region, to_wire
from ocrflow.polling import RETENTION_S
from ocrflow.settings import OcrflowSettings
from tests.services import scaled_stack
from tests.stack_api import api, shard_runs, stack_settings, trigger, wait_for_run

RESULTS = Path(__file__).parent / "results" / "sweep_100k.json"
IMAGE = b"simulated image"
TASK_RUNS_PER_BATCH = 4  # first look, decode, process, store: per batch of done jobs; and each
# shard run closes interrupted submissions once (one more task run)
RSS_LIMIT_MB = 600


# --- the stack's processes, their peak memory ---


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:  # /proc: read fast and often
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _role(cmdline: str) -> str | None:
    if "prefect.flow_engine" in cmdline or "prefect.engine" in cmdline:
        return "flow-run process"
    if "worker start" in cmdline or "worker\x00start" in cmdline:
        return "shard worker"
    if "prefect.server" in cmdline or "server\x00start" in cmdline:
        return "Prefect server"
    if "ocrflow.emulator" in cmdline:
        return "emulator"
    return None


@dataclass
class MemorySampler:
    """The peak RSS (VmHWM) of every process below this one, by role, sampled twice a second."""

    peaks_mb: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            role = _role(_read(f"/proc/{entry}/cmdline"))
            if role is None:
                continue
            for line in _read(f"/proc/{entry}/status").splitlines():
                if line.startswith("VmHWM:"):
                    mb = int(line.split()[1]) / 1024
                    self.peaks_mb[role] = max(self.peaks_mb.get(role, 0.0), mb)

    def reset(self) -> None:
        self.peaks_mb = {}

    @contextmanager
    def running(self) -> Iterator[MemorySampler]:
        def loop() -> None:
            while not self._stop.wait(0.5):
                self.sample()

        thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=5)


# --- seeding ---


async def seed(settings: OcrflowSettings, count: int) -> list[str]:
    """Submit ``count`` jobs to the emulator (simulation: done at once) and record them in the
    ledger in one bulk insert (a benchmark's shortcut: ``record_job`` is one row a call)."""
    region = [Region(rect=Rect.from_xywh(0, 0, 200, 30))]
    slots = asyncio.Semaphore(64)
    async with OcrClient(settings.model_copy(update={"concurrency": 64})) as client:

        async def submit() -> str:
            async with slots:
                for _ in range(4):  # a broken POST is not retried by the client; here it may be
                    try:
                        return await client.submit_regions(IMAGE, region)
                    except TransportError:
                        await asyncio.sleep(0.5)
                return await client.submit_regions(IMAGE, region)

        ids = list(await asyncio.gather(*(submit() for _ in range(count))))
    now = datetime.now(UTC)
    recorded = to_wire(RecognizeRegionsSettings())  # as ocrflow's own submissions record
    rows = [
        unfinished_row(
            job_id,
            now - timedelta(milliseconds=count - number),
            regions=[{"order": 0}],
            settings=recorded,
            image_bytes=len(IMAGE),
        )
        for number, job_id in enumerate(ids)
    ]
    await bulk_insert(settings.ledger_url, rows)
    return ids


def unfinished_row(job_id: str, created_at: datetime, **columns: Any) -> dict[str, Any]:
    """A jobs-table row of an unfinished job submitted at ``created_at``."""
    return {
        "job_id": job_id,
        "state": JobState.SUBMITTED.value,
        "regions": [],
        "settings": {},
        "attempt": 1,
        "polls": 0,
        "created_at": created_at,
        "updated_at": created_at,
        **columns,
    }


async def bulk_insert(ledger_url: str, rows: list[dict[str, Any]]) -> None:
    """Rows straight into the ledger's jobs table, 5,000 a statement."""
    async with Ledger.connect(ledger_url) as ledger, ledger.engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            await connection.execute(insert(JobRow), rows[start : start + 5000])


# --- the plans of a sweep's ledger queries ---


async def query_plans(ledger_url: str) -> list[dict[str, str]]:
    """Run the ledger calls a sweep makes and ask PostgreSQL for the plan of each statement."""
    statements: list[tuple[str, Any]] = []
    async with Ledger.connect(ledger_url) as ledger:
        async with ledger.engine.begin() as connection:  # as autovacuum would, soon after
            await connection.execute(text("ANALYZE ocrflow_jobs"))

        def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
                statements.append((statement, params))

        event.listen(ledger.engine.sync_engine, "before_cursor_execute", capture)
        claim = f"bench-{uuid.uuid4().hex[:8]}"
        leased = await ledger.claim_unfinished(claim, lease_s=600, limit=None)
        fence = await ledger.fence(claim)
        await ledger.jobs(set(leased[:50]))
        await ledger.processing_times()
        await ledger.renew_claim(claim, lease_s=600)
        await ledger.taken_over(fence)
        await ledger.claimable_count()
        await ledger.release_claim(claim)
        event.remove(ledger.engine.sync_engine, "before_cursor_execute", capture)
        plans = []
        seen: set[str] = set()
        async with ledger.engine.connect() as connection:
            for statement, params in statements:
                key = " ".join(statement.split())[:120]
                if key in seen:
                    continue
                seen.add(key)
                raw = await connection.exec_driver_sql(f"EXPLAIN {statement}", params)
                plan = "\n".join(_shortened(str(row[0])) for row in raw)
                plans.append({"statement": " ".join(statement.split()), "plan": plan})
    return plans


def _shortened(line: str, width: int = 160) -> str:
    """A plan line without the hundreds of ids of an IN list."""
    return line if len(line) <= width else line[: width - 1] + "…"


# --- one sharded sweep ---


def count_task_runs(
    stack: Stack, run_ids: list[str], expected: int, wait_s: float = 1200
) -> tuple[int, float]:
    """Task runs the server recorded for the shard runs, waiting for stragglers (bounded), and
    how long after the call they were all there."""
    started = time.monotonic()
    count = 0
    with api(stack) as http:
        while time.monotonic() < started + wait_s:
            body = {"flow_runs": {"id": {"any_": run_ids}}}
            count = int(http.post("/task_runs/count", json=body).json())
            if count >= expected:
                break
            time.sleep(2)
    return count, time.monotonic() - started


def sweep(
    stack: Stack, sampler: MemorySampler, jobs: int, shards: int, seed_s: float
) -> dict[str, Any]:
    """Sweep the ``jobs`` seeded jobs in ``shards`` shards; the run's figures."""
    sampler.reset()
    started = time.monotonic()
    parent_id = trigger(stack, "sharded-sweep/sharded-sweep", {"shards": shards}, uuid.uuid4().hex)
    parent = wait_for_run(stack, parent_id, timeout_s=7200)
    wall_s = time.monotonic() - started
    peaks = dict(sampler.peaks_mb)
    if parent["state_type"] != "COMPLETED":
        raise RuntimeError(f"the sharded sweep ended {parent['state_type']}: {parent['state']}")
    runs = [r for r in shard_runs(stack, parent["start_time"]) if r["state_type"] == "COMPLETED"]
    starts = [datetime.fromisoformat(r["start_time"]) for r in runs]
    ends = [datetime.fromisoformat(r["end_time"]) for r in runs]
    span_s = (max(ends) - min(starts)).total_seconds()
    batches = sum(-(-int(r["parameters"].get("limit") or 0) // 50) for r in runs)
    expected = TASK_RUNS_PER_BATCH * batches + len(runs)  # and one close-interrupted-submissions
    recorded, record_wait_s = count_task_runs(stack, [r["id"] for r in runs], expected)
    return {
        "jobs": jobs,
        "shards": shards,
        "shard_runs": len(runs),
        "seed_s": seed_s,
        "span_s": span_s,
        "wall_s": wall_s,
        "jobs_per_s": jobs / span_s,
        "peak_rss_mb": peaks,
        "task_runs_expected": expected,
        "task_runs_recorded": recorded,
        "recorded_s_after_the_parent_run": record_wait_s,
    }


# --- the order a backlog is settled in ---


class FrozenClock(Clock):
    """The ledger's now, held at one instant."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class OrderFigures:
    """Jobs lost to the retention when a backlog is settled in one order at one rate."""

    order: str
    rate: float
    expired_before_turn: int  # still fetchable at the sweep's start, gone by their turn
    already_expired: int


async def backlog_order(jobs: int, workdir: Path) -> tuple[list[str], list[str], dict[str, float]]:
    """A backlog submitted evenly over the last 26 h in a SQLite ledger: the order the ledger
    settles it in, the previous order (oldest first), and each job's age in seconds."""
    now = datetime.now(UTC)
    span_s = 26 * 3600.0
    ages = {f"{n:08x}-0000-4000-8000-{n:012x}": span_s * (n + 0.5) / jobs for n in range(jobs)}
    url = f"sqlite+aiosqlite:///{workdir / 'order.db'}"
    rows = [unfinished_row(job_id, now - timedelta(seconds=age)) for job_id, age in ages.items()]
    await bulk_insert(url, rows)
    async with Ledger.connect(url, clock=FrozenClock(now)) as ledger:  # the ages' own instant
        ours = await ledger.unfinished_job_ids()
        async with ledger.engine.connect() as connection:
            previous = select(JobRow.job_id).order_by(JobRow.created_at, JobRow.job_id)
            before = list((await connection.scalars(previous)).all())
    return ours, before, ages


def expired_in_turn(
    order: list[str], ages: dict[str, float], rate: float, expired_calls: float = 3.0
) -> tuple[int, int]:
    """Settle ``order`` at ``rate`` calls a second: a job still fetchable costs one call, an
    expired one ``expired_calls`` (NotExist, the resubmission, its first poll). (How many were
    fetchable at the start and gone by their turn, how many were gone already.)"""
    elapsed = 0.0
    lost = gone = 0
    for job_id in order:
        age = ages[job_id]
        if age >= RETENTION_S:
            gone += 1
            elapsed += expired_calls / rate
            continue
        elapsed += 1.0 / rate
        if age + elapsed >= RETENTION_S:
            lost += 1
    return lost, gone


# --- the report ---


def print_report(report: dict[str, Any]) -> None:
    sweeps = report["sweeps"]
    baseline = next((s for s in sweeps if s["jobs"] == report["baseline_jobs"]), None)
    if baseline is not None:
        print_sweeps(sweeps, baseline, report["plans"])
    print("\nA backlog submitted evenly over 26 h: jobs lost to the 24 h retention by their turn\n")
    print("| rate | order | fetchable, gone by their turn | expired already |")
    print("| ---: | --- | ---: | ---: |")
    for row in report["order"]:
        print(
            f"| {row['rate']:.0f} calls/s | {row['order']} | {row['expired_before_turn']:,} | "
            f"{row['already_expired']:,} |"
        )


def print_sweeps(
    sweeps: list[dict[str, Any]], baseline: dict[str, Any], plans: list[dict[str, str]]
) -> None:
    print("\nSweeps of done jobs, PostgreSQL server and ledger (simulation mode)\n")
    print(
        "| jobs | workers | shards' span | jobs/s | vs baseline | parent run | peak RSS: flow-run "
        "process | worker | server | task runs recorded / made |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in sweeps:
        peaks = s["peak_rss_mb"]
        print(
            f"| {s['jobs']:,} | {s['shards']} | {s['span_s']:.1f} s | {s['jobs_per_s']:.0f} | "
            f"{s['jobs_per_s'] / baseline['jobs_per_s']:.2f} | {s['wall_s']:.1f} s | "
            f"{peaks.get('flow-run process', 0):.0f} MB | "
            f"{peaks.get('shard worker', 0):.0f} MB | {peaks.get('Prefect server', 0):.0f} MB | "
            f"{s['task_runs_recorded']:,} / {s['task_runs_expected']:,} |"
        )
    print("\nPlans of a sweep's ledger queries, on the large ledger:")
    for plan in plans:
        print(f"\n{plan['statement'][:160]}\n{plan['plan']}")


def run_sweeps(jobs: int, baseline_jobs: int) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The three sweeps on one stack, and the plans on the large ledger before its sweeps."""
    sweeps: list[dict[str, Any]] = []
    plans: list[dict[str, str]] = []
    sampler = MemorySampler()
    with (
        tempfile.TemporaryDirectory(prefix="ocrflow-bench-100k-") as home,
        scaled_stack(Path(home), "bench100k", 11, {}) as stack,
        sampler.running(),
    ):
        settings = stack_settings(stack)
        for count, shards in ((baseline_jobs, 1), (jobs, 1), (jobs, 2)):
            seeded_at = time.monotonic()
            asyncio.run(seed(settings, count))
            seed_s = time.monotonic() - seeded_at
            if count == jobs and not plans:
                plans = asyncio.run(query_plans(settings.ledger_url))
            figures = sweep(stack, sampler, count, shards, seed_s)
            sweeps.append(figures)
            print(f"  {count:,} jobs, {shards} worker(s): {figures}", flush=True)
    return sweeps, plans


def order_figures(jobs: int, rates: list[float]) -> list[dict[str, Any]]:
    """Jobs lost to the retention with each order, at each rate."""
    with tempfile.TemporaryDirectory(prefix="ocrflow-bench-order-") as workdir:
        ours, before, ages = asyncio.run(backlog_order(jobs, Path(workdir)))
    rows = []
    for rate in rates:
        for name, order in (
            ("nearest expiry first, the expired last (now)", ours),
            ("oldest first, the expired among them (before)", before),
        ):
            lost, gone = expired_in_turn(order, ages, rate)
            rows.append(asdict(OrderFigures(name, rate, lost, gone)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--baseline-jobs", type=int, default=1000)
    parser.add_argument("--order-only", action="store_true", help="the order's figures alone")
    args = parser.parse_args()
    report: dict[str, Any] = {"jobs": args.jobs, "baseline_jobs": args.baseline_jobs}
    sweeps, plans = ([], []) if args.order_only else run_sweeps(args.jobs, args.baseline_jobs)
    report["sweeps"], report["plans"] = sweeps, plans
    measured = [s["jobs_per_s"] for s in sweeps if s["shards"] == 1 and s["jobs"] == args.jobs]
    report["order"] = order_figures(args.jobs, [*measured, 20.0])
    if not args.order_only:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    if sweeps:
        plot_sweep_100k()


if __name__ == "__main__":
    main()
