"""Benchmark: what Prefect adds to the bare client, and the flow's memory, on completed jobs.

Starts a local Prefect server (SQLite, tuned recorder batches) and the emulator in simulation
mode, both on 127.0.0.1; submits completed jobs into a fresh ledger; then settles them twice,
at the same HTTP concurrency: by the ``fetch-results`` flow in its own process, and by the core
client alone in one asyncio process (GET, decode, process, store). Prints throughput, their
ratio, the flow process's peak RSS and how many task runs the server recorded.
Run: ``make bench-overhead`` (``--jobs 1000 --latency-ms 0 100``; ``--memory-jobs 10000``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import tempfile
import time
from pathlib import Path

import httpx

from bench.plots import plot_overhead
from bench.stack import flow_env, prefect_server, run_python
from ocrflow.client import OcrClient
from ocrflow.emulator.app import create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorSettings
from ocrflow.errors import TransportError
from ocrflow.ledger import Ledger, NewResult
from ocrflow.models import Rect, Region
from ocrflow.processing import process_response
from ocrflow.settings import OcrflowSettings

CONCURRENCY = 8
BATCH = OcrflowSettings.model_fields["batch"].default  # jobs per look, decode and store
FLOW_SCRIPT = """
import asyncio, json, sys, time
from ocrflow.flows.fetch_results import fetch_results
ids = json.load(open(sys.argv[1]))
started = time.perf_counter()
state = asyncio.run(fetch_results(job_ids=ids, return_state=True))
print(json.dumps({"seconds": time.perf_counter() - started, "flow_run_id": str(state.state_details.flow_run_id), "state": state.type.value}))
"""


def settings(base_url: str, ledger_url: str) -> OcrflowSettings:
    return OcrflowSettings.model_validate(
        {
            "base_url": base_url,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "ledger_url": ledger_url,
            "concurrency": CONCURRENCY,
        }
    )


async def seed_jobs(config: OcrflowSettings, count: int) -> list[str]:
    """Submit ``count`` jobs (simulation: done at once) and record them in the ledger."""
    region = [Region(rect=Rect.from_xywh(0, 0, 200, 30))]
    ledger = await Ledger.open(config.ledger_url)
    try:
        async with OcrClient(config.model_copy(update={"concurrency": 32})) as client:

            async def submit() -> str:
                # A POST whose connection broke is not retried by the client (it may have been
                # received); here a duplicate job costs nothing, so the seeding tries again.
                for _ in range(4):
                    try:
                        return await client.submit_regions(b"sim", region)
                    except TransportError:
                        await asyncio.sleep(0.5)
                return await client.submit_regions(b"sim", region)

            ids = await asyncio.gather(*(submit() for _ in range(count)))
        for job_id in ids:
            await ledger.record_job(
                job_id, image_sha256=None, source=None, regions=[{"order": 0}], settings={}
            )
    finally:
        await ledger.close()
    return list(ids)


async def bare_client(config: OcrflowSettings, job_ids: list[str]) -> float:
    """The same work without Prefect: GET, decode, process, store, at the same concurrency."""
    ledger = await Ledger.open(config.ledger_url)
    slots = asyncio.Semaphore(200)
    try:
        async with OcrClient(config) as client:
            await client.get_status(job_ids[0])  # the token, outside the timing
            started = time.perf_counter()

            async def one(job_id: str) -> None:
                async with slots:
                    response = await client.get_result(job_id)
                    entries = process_response(response, region_count=1, max_bytes=1 << 24)
                    rows = [
                        NewResult.from_entry(e, region_name=None, file_path=None) for e in entries
                    ]
                    await ledger.store_results(job_id, rows)

            await asyncio.gather(*(one(job_id) for job_id in job_ids))
            return time.perf_counter() - started
    finally:
        await ledger.close()


def run_bare(url: str, ledger_url: str, job_ids: list[str], workdir: Path) -> float:
    """The bare client in a process of its own, as the flow has (not beside the emulator)."""
    ids_file = workdir / "bare-ids.json"
    ids_file.write_text(json.dumps({"url": url, "ledger": ledger_url, "ids": job_ids}))
    return float(run_python(["-m", "bench.overhead", "--bare", str(ids_file)]))


def run_flow(env: dict[str, str], job_ids: list[str], workdir: Path) -> dict[str, object]:
    ids_file = workdir / "ids.json"
    ids_file.write_text(json.dumps(job_ids))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    last_line = run_python(["-c", FLOW_SCRIPT, str(ids_file)], env)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out: dict[str, object] = json.loads(last_line)
    out["peak_rss_mb"] = max(peak_kb, before) / 1024
    return out


def count_task_runs(api: str, flow_run_id: str, expected: int, wait_s: float = 180) -> int:
    """Task runs the server recorded for the flow run (and its subflows), waiting for stragglers."""
    deadline = time.monotonic() + wait_s
    count = 0
    while time.monotonic() < deadline:
        body = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
        count = int(httpx.post(f"{api}/task_runs/count", json=body, timeout=30).json())
        if count >= expected:
            break
        time.sleep(2)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 100])
    parser.add_argument("--memory-jobs", type=int, nargs="*", default=[10_000])
    parser.add_argument("--bare", help=argparse.SUPPRESS)  # the bare client's own process
    args = parser.parse_args()
    if args.bare:
        spec = json.loads(Path(args.bare).read_text())
        print(asyncio.run(bare_client(settings(spec["url"], spec["ledger"]), spec["ids"])))
        return
    workdir = Path(tempfile.mkdtemp(prefix="ocrflow-bench-"))
    emulator = create_app(
        EmulatorSettings.model_validate(
            {"simulate": True, "processing": {"seconds": 0}, "workers": 4}
        )
    )
    rows = []
    try:
        with prefect_server(workdir) as api, serve_in_thread(emulator) as url:
            runs = [(args.jobs, latency) for latency in args.latency_ms] + [
                (n, 0) for n in args.memory_jobs
            ]
            for index, (jobs, latency) in enumerate(runs):
                httpx.put(
                    f"{url}/_emulator/faults", json={"latency_s": latency / 1000}
                ).raise_for_status()
                flow_ledger = f"sqlite+aiosqlite:///{workdir / f'flow-{index}.db'}"
                bare_ledger = f"sqlite+aiosqlite:///{workdir / f'bare-{index}.db'}"
                flow_ids = asyncio.run(seed_jobs(settings(url, flow_ledger), jobs))
                env = {
                    **flow_env(api, url, flow_ledger, workdir / "results"),
                    "OCRFLOW_CONCURRENCY": str(CONCURRENCY),
                }
                flow = run_flow(env, flow_ids, workdir)
                bare_s = None
                if (jobs, latency) in [(args.jobs, lat) for lat in args.latency_ms]:
                    bare_ids = asyncio.run(seed_jobs(settings(url, bare_ledger), jobs))
                    bare_s = run_bare(url, bare_ledger, bare_ids, workdir)
                recorded = count_task_runs(
                    api, str(flow["flow_run_id"]), expected=4 * math.ceil(jobs / BATCH)
                )
                rows.append(
                    (
                        jobs,
                        latency,
                        float(str(flow["seconds"])),
                        bare_s,
                        float(str(flow["peak_rss_mb"])),
                        recorded,
                        flow["state"],
                    )
                )
    finally:
        emulator.state.emulator.jobs.close()
    print(
        f"\n{'jobs':>6} {'latency':>8} {'flow jobs/s':>12} {'client jobs/s':>14} {'ratio':>6} {'flow peak RSS':>14} {'task runs':>10} {'state':>10}"
    )
    for jobs, latency, flow_s, bare_s, rss, recorded, state in rows:
        client = f"{jobs / bare_s:14.1f}" if bare_s else f"{'':>14}"
        ratio = f"{(bare_s / flow_s):6.2f}" if bare_s else f"{'':>6}"
        print(
            f"{jobs:>6} {latency:>6}ms {jobs / flow_s:>12.1f} {client} {ratio} {rss:>11.0f} MB {recorded:>10} {state:>10}"
        )
    out = Path(__file__).resolve().parent / "results" / "overhead.json"
    out.write_text(
        json.dumps(
            [
                dict(
                    zip(
                        (
                            "jobs",
                            "latency_ms",
                            "flow_s",
                            "client_s",
                            "flow_peak_rss_mb",
                            "task_runs_recorded",
                            "state",
                        ),
                        r,
                        strict=True,
                    )
                )
                for r in rows
            ],
            indent=2,
        )
    )
    plot_overhead()


if __name__ == "__main__":
    main()
