"""Benchmark: the learned polling through the real stack, beside the virtual clock.

The fetch flow's own code (batched first looks, the status-check task and its Prefect retries,
the client) polls the emulator in simulation mode, whose jobs take the polling benchmark's
durations (*done*, *fast*, *slow*) with time scaled down (*fast* x0.5, *slow* x0.2: five
times faster; ``--scale`` sets one for all; the polling settings are scaled alike). Per workload, one flow run on a local Prefect
server submits a warm-up group that teaches the learned policy, then groups of jobs arriving
one after another, each settled as it arrives. The emulator's timeline of every job gives
GETs per job and the detection lag (scaled back); the virtual clock then drives the same
policy over the very same durations, in the same order, and both are printed side by side.
Run: ``make bench-polling-live``; writes ``bench/results/polling_live.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.plots import plot_polling_live
from bench.polling import Job, run_learned
from bench.stack import flow_env, prefect_server, run_python
from ocrflow.adaptive import AdaptivePollPolicy
from ocrflow.emulator.app import create_app
from ocrflow.emulator.jobs import JobTiming
from ocrflow.emulator.server import serve_in_thread
from ocrflow.emulator.settings import EmulatorSettings

RESULTS = Path(__file__).resolve().parent / "results" / "polling_live.json"
IMAGE = b"simulated image"  # simulation mode reads no pixels
ALREADY_DONE_AGE_S = 3600.0


@dataclass(frozen=True)
class Workload:
    """A duration distribution (unscaled) and how its jobs arrive."""

    median_s: float
    sigma: float
    warmup: int
    groups: int
    group_size: int
    gap_s: float  # unscaled time between two groups
    done_first: bool = False  # the jobs are complete before the flow looks at them
    scale: float = 0.2  # real seconds per second: short jobs are scaled less, so that the
    # stack's own few milliseconds per poll are not magnified beyond what they are


WORKLOADS = {
    "done": Workload(2.0, 0.75, warmup=0, groups=1, group_size=200, gap_s=0, done_first=True),
    "fast": Workload(2.0, 0.75, warmup=25, groups=30, group_size=10, gap_s=4.0, scale=0.5),
    "slow": Workload(20.0, 1.0, warmup=25, groups=10, group_size=20, gap_s=10.0),
}


@dataclass
class Figures:
    """Calls per job and detection lag (p50, p95), in unscaled seconds."""

    jobs: int
    calls_mean: float
    lag_p50_s: float
    lag_p95_s: float


# --- the flow run (a child process, so that Prefect reads the server's URL from its env) ---


async def _child(workload: Workload, scale: float) -> dict[str, list[str]]:
    from prefect import flow  # noqa: PLC0415 - the parent process does not need Prefect

    from ocrflow.flows.fetch_results import settle_jobs  # noqa: PLC0415
    from ocrflow.models import RecognizeRegionsSettings, Rect, Region, to_wire  # noqa: PLC0415
    from ocrflow.runtime import Runtime, open_runtime  # noqa: PLC0415
    from ocrflow.tasks.credentials import load_settings  # noqa: PLC0415

    region = [Region(rect=Rect.from_xywh(0, 0, 200, 30))]

    async def submit_one(runtime: Runtime) -> str:
        sent_at = datetime.now(UTC)
        job_id = await runtime.client.submit_regions(IMAGE, region)
        await runtime.ledger.record_job(
            job_id,
            image_sha256=None,
            source=None,
            regions=[{"order": 0}],
            # what ocrflow's own submissions record: a job without them reads as an id given
            # by hand, whose class (and so the learned policy) is unknown
            settings=to_wire(RecognizeRegionsSettings()),
            image_bytes=len(IMAGE),
            submitted_at=sent_at,
        )
        return job_id

    async def submit(runtime: Runtime, count: int) -> list[str]:
        return list(await asyncio.gather(*(submit_one(runtime) for _ in range(count))))

    @flow(name="bench-polling-live")
    async def live_polling() -> dict[str, list[str]]:
        settings = await load_settings()
        measured: list[str] = []
        async with open_runtime(settings) as runtime:
            warm = await submit(runtime, workload.warmup) if workload.warmup else []
            if warm:
                await settle_jobs(runtime, warm)

            async def group(number: int) -> None:
                await asyncio.sleep(number * workload.gap_s * scale)
                ids = await submit(runtime, workload.group_size)
                measured.extend(ids)
                if workload.done_first:
                    await asyncio.sleep(1.0)  # simulation: done at once; this makes sure
                await settle_jobs(runtime, ids)

            await asyncio.gather(*(group(n) for n in range(workload.groups)))
        return {"warmup": warm, "measured": measured}

    return await live_polling()


# --- the parent: emulator, server, figures ---


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)] if ordered else float("nan")


def live_figures(timings: list[JobTiming], scale: float, done_first: bool) -> Figures:
    # A job done before polling began has no detection lag (as on the virtual clock).
    lags = [
        0.0 if done_first else (t.seen_done_at - t.ready_at) / scale
        for t in timings
        if t.seen_done_at is not None and t.ready_at is not None
    ]
    return Figures(
        jobs=len(timings),
        calls_mean=sum(t.gets for t in timings) / max(len(timings), 1),
        lag_p50_s=_percentile(lags, 0.5),
        lag_p95_s=_percentile(lags, 0.95),
    )


def virtual_figures(
    warm: list[JobTiming], measured: list[JobTiming], scale: float, done_first: bool
) -> Figures:
    """The virtual clock over the same durations, in the same order, unscaled."""

    def job(t: JobTiming) -> Job:
        duration = ((t.ready_at or t.created) - t.created) / scale
        return Job(duration, ALREADY_DONE_AGE_S if done_first else 0.0, len(IMAGE), 1)

    outcome = run_learned(
        AdaptivePollPolicy(), [job(t) for t in warm + measured], seed=7, measure_from=len(warm)
    )
    return Figures(len(measured), outcome.calls_mean, outcome.lag_p50_s, outcome.lag_p95_s)


def run_workload(
    name: str, workload: Workload, api: str, scale: float, workdir: Path
) -> dict[str, Any]:
    processing = {
        "kind": "lognormal",
        "seconds": 0.0 if workload.done_first else workload.median_s * scale,
        "sigma": workload.sigma,
    }
    app = create_app(
        EmulatorSettings.model_validate(
            {"simulate": True, "processing": processing, "workers": 4, "seed": 2026}
        )
    )
    store = app.state.emulator.jobs
    try:
        with serve_in_thread(app) as url:
            ledger_url = f"sqlite+aiosqlite:///{workdir / f'{name}.db'}"
            env = {
                **flow_env(api, url, ledger_url, workdir / "results"),
                "OCRFLOW_WINDOW": "1000",
                "OCRFLOW_POLL_FIRST_DELAY_S": str(1.0 * scale),
                "OCRFLOW_POLL_MAX_DELAY_S": str(30.0 * scale),
                "OCRFLOW_POLL_LAG_FLOOR_S": str(2.0 * scale),
                "OCRFLOW_POLL_DEADLINE_S": str(6 * 3600.0 * scale),
            }
            argument = json.dumps({"workload": name, "scale": scale})
            last_line = run_python(["-m", "bench.polling_live", "--child", argument], env, 900)
            ids = json.loads(last_line)
            warm, measured = store.timings(ids["warmup"]), store.timings(ids["measured"])
    finally:
        store.close()
    live = live_figures(measured, scale, workload.done_first)
    virtual = virtual_figures(warm, measured, scale, workload.done_first)
    return {"workload": name, "scale": scale, "live": asdict(live), "virtual": asdict(virtual)}


def _delta(live: float, virtual: float) -> str:
    if virtual == 0:
        return "  same" if live == 0 else "   n/a"
    return f"{100 * (live - virtual) / virtual:+5.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, help="real seconds per second, for every load")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        ids = asyncio.run(_child(WORKLOADS[spec["workload"]], spec["scale"]))
        print(json.dumps(ids))
        return
    workdir = Path(tempfile.mkdtemp(prefix="ocrflow-bench-live-"))
    rows = []
    with prefect_server(workdir) as api:
        for name in args.workloads:
            scale = args.scale or WORKLOADS[name].scale
            rows.append(run_workload(name, WORKLOADS[name], api, scale, workdir))
            print(f"  {name}: done", file=sys.stderr)
    RESULTS.write_text(json.dumps({"workloads": rows}, indent=2) + "\n")
    plot_polling_live()
    print("\nLearned polling: the flow on the real stack (time scaled) vs the virtual clock")
    head = "  {:<6} {:>5} {:>6} {:>11} {:>11} {:>6} {:>10} {:>10} {:>10} {:>10} {:>6}"
    print(
        head.format(
            "load",
            "jobs",
            "scale",
            "calls live",
            "calls virt",
            "diff",
            "p50 live",
            "p50 virt",
            "p95 live",
            "p95 virt",
            "diff",
        )
    )
    for row in rows:
        live, virtual = row["live"], row["virtual"]
        print(
            head.format(
                row["workload"],
                live["jobs"],
                f"x{row['scale']}",
                f"{live['calls_mean']:.2f}",
                f"{virtual['calls_mean']:.2f}",
                _delta(live["calls_mean"], virtual["calls_mean"]),
                f"{live['lag_p50_s']:.2f} s",
                f"{virtual['lag_p50_s']:.2f} s",
                f"{live['lag_p95_s']:.2f} s",
                f"{virtual['lag_p95_s']:.2f} s",
                _delta(live["lag_p95_s"], virtual["lag_p95_s"]),
            )
        )


if __name__ == "__main__":
    main()
