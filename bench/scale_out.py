"""Benchmark: the sharded sweep with one shard worker against two, on the scale-out stack.

Starts the stack as ``make serve-scaled`` does (Prefect server and ledger on the local
PostgreSQL, in databases made for the run and dropped after it; Redis messaging when one
answers; two shard workers; the emulator in simulation mode), all on 127.0.0.1. For each
service latency, submits completed jobs into the ledger and triggers the sharded sweep twice
over fresh jobs: ``shards=1`` (one worker works, the other idles) and ``shards=2`` (one shard
per worker). Prints jobs per second over the shards' own span (first shard start to last shard
end) and over the whole parent run (worker pick-up and process start included).
Run: ``make bench-scale`` (``--jobs 2000 --latency-ms 0 100``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ocrflow.cli.stack import Stack
from tests.reliability.helpers import seed
from tests.services import scaled_stack
from tests.stack_api import shard_runs, stack_settings, trigger, wait_for_run

RESULTS = Path(__file__).parent / "results" / "scale_out.json"


def _span_s(runs: list[dict[str, Any]]) -> float:
    starts = [datetime.fromisoformat(r["start_time"]) for r in runs]
    ends = [datetime.fromisoformat(r["end_time"]) for r in runs]
    return (max(ends) - min(starts)).total_seconds()


def measure(stack: Stack, jobs: int, shards: int, latency_ms: int) -> dict[str, float]:
    """Seed ``jobs`` completed jobs, sweep them in ``shards`` shards; the run's figures."""
    emulator = str(stack.emulator_url)
    httpx.put(f"{emulator}/_emulator/faults", json={}, timeout=10).raise_for_status()
    asyncio.run(seed(jobs, stack_settings(stack)))
    faults = {"latency_s": latency_ms / 1000}
    httpx.put(f"{emulator}/_emulator/faults", json=faults, timeout=10).raise_for_status()
    started = time.monotonic()
    parent_id = trigger(
        stack, "sharded-sweep/sharded-sweep", {"shards": shards}, key=uuid.uuid4().hex
    )
    parent = wait_for_run(stack, parent_id, timeout_s=1800)
    wall_s = time.monotonic() - started
    if parent["state_type"] != "COMPLETED":
        raise RuntimeError(f"the sharded sweep ended {parent['state_type']}: {parent['state']}")
    runs = [
        run for run in shard_runs(stack, parent["start_time"]) if run["state_type"] == "COMPLETED"
    ]
    span_s = _span_s(runs)
    return {"shard runs": len(runs), "span_s": span_s, "wall_s": wall_s, "jobs": jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 100])
    args = parser.parse_args()

    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ocrflow-bench-scale-") as home,
        scaled_stack(Path(home), "bench", 10, {}) as stack,
    ):
        for latency_ms in args.latency_ms:
            for shards in (1, 2):
                figures = measure(stack, args.jobs, shards, latency_ms)
                rows.append((latency_ms, shards, figures))
                print(f"  latency {latency_ms} ms, {shards} worker(s): {figures}", flush=True)

    results = [{"latency_ms": lat, "workers": n, **f} for lat, n, f in rows]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"jobs": args.jobs, "rows": results}, indent=2) + "\n")
    print()
    print(f"Sharded sweep of {args.jobs} completed jobs, PostgreSQL server and ledger")
    print()
    print(
        "| latency | workers | shard runs | shards' span s | jobs/s (span) | parent run s | jobs/s (parent) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for latency_ms, shards, f in rows:
        print(
            f"| {latency_ms} ms | {shards} | {f['shard runs']:.0f} | {f['span_s']:.1f} | "
            f"{f['jobs'] / f['span_s']:.0f} | {f['wall_s']:.1f} | {f['jobs'] / f['wall_s']:.0f} |"
        )
    for latency_ms in args.latency_ms:
        one, two = (f for lat, _, f in rows if lat == latency_ms)
        print(
            f"\n{latency_ms} ms: two workers settle {one['span_s'] / two['span_s']:.2f}x as fast "
            f"as one (shards' span), {one['wall_s'] / two['wall_s']:.2f}x counting the parent run"
        )


if __name__ == "__main__":
    main()
