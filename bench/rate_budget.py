"""Benchmark: a request budget shared by every poll of a run, against a service that answers
429 beyond R requests a second.

The emulator (simulation mode, on 127.0.0.1) rate-limits at R; the core client fetches N
completed jobs at once, with and without its own budget of R. Prints 429s seen, calls made and
the makespan beside calls ÷ R. Run: ``.venv/bin/python -m bench.rate_budget [--rps R] [--jobs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from ocrflow.client import OcrClient
from ocrflow.emulator.app import create_app
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorSettings
from ocrflow.models import Rect, Region
from ocrflow.settings import ClientSettings


def settings(base_url: str, rps: float | None) -> ClientSettings:
    return ClientSettings.model_validate(
        {
            "base_url": base_url,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "concurrency": 16,
            "rate_limit_rps": rps,
            "max_attempts": 20,
        }
    )


async def submit_all(base_url: str, jobs: int) -> list[str]:
    region = [Region(rect=Rect.from_xywh(0, 0, 100, 20))]
    async with OcrClient(settings(base_url, None)) as client:
        return list(
            await asyncio.gather(
                *(client.submit_regions(b"simulated", region) for _ in range(jobs))
            )
        )


async def fetch_all(base_url: str, job_ids: list[str], rps: float | None) -> tuple[float, int]:
    async with OcrClient(settings(base_url, rps)) as client:
        await client.get_status(job_ids[0])  # the token, outside the timing
        started = time.perf_counter()
        await asyncio.gather(*(client.get_result(job_id) for job_id in job_ids))
        return time.perf_counter() - started, len(job_ids)


def main() -> None:
    """Run with and without the client's budget; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    app = create_app(
        EmulatorSettings.model_validate({"simulate": True, "processing": {"seconds": 0}})
    )
    with serve_in_thread(app) as url:
        job_ids = asyncio.run(submit_all(url, args.jobs))
        print(f"service limit {args.rps:g} req/s, {args.jobs} completed jobs fetched at once\n")
        print(
            f"  {'client budget':<16} {'429s':>6} {'calls':>6} {'makespan s':>11} {'calls/R s':>10}"
        )
        for budget in (None, args.rps):
            httpx.put(
                f"{url}/_emulator/faults", json={"rate_limit_rps": args.rps}
            ).raise_for_status()
            httpx.post(f"{url}/_emulator/reset").raise_for_status()
            httpx.put(
                f"{url}/_emulator/faults", json={"rate_limit_rps": args.rps}
            ).raise_for_status()
            makespan, _ = asyncio.run(fetch_all(url, job_ids, budget))
            counts = httpx.get(f"{url}/_emulator/stats").json()["counts"]
            limited = counts.get("fault_rate_limited", 0)
            calls = counts.get("requests", 0)
            label = "none" if budget is None else f"{budget:g} req/s"
            print(
                f"  {label:<16} {limited:>6} {calls:>6} {makespan:>11.2f} {calls / args.rps:>10.2f}"
            )
    app.state.emulator.jobs.close()


if __name__ == "__main__":
    main()
