"""Benchmark: API calls per job against detection lag, for ocrflow's polling and the usual ones.

Drives each policy over a virtual clock (no sleeping, no HTTP) against the same draws of job
processing times: *done* (complete before polling starts), *fast* (log-normal, median 2 s,
sigma 0.75), *slow* (median 20 s, sigma 1.0) and *mixed* (half each, the job's size telling
which). Prints a table per workload, writes ``bench/results/polling.json`` and draws
``docs/img/polling.png``. Run: ``make bench-polling`` (``--jobs N`` to change the 20,000).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ocrflow.adaptive import AdaptivePollPolicy, DurationModel, job_class, observed_duration
from ocrflow.polling import PollPolicy

ROOT = Path(__file__).resolve().parents[1]
GIVE_UP_S = 6 * 3600.0


@dataclass(frozen=True)
class Job:
    """One simulated job: its processing time, its age when polling starts, its class."""

    duration_s: float
    start_age_s: float
    image_bytes: int
    regions: int


# A baseline: (attempt = polls done so far, elapsed since polling began) → wait, or None.
Schedule = Callable[[int, float, random.Random], float | None]


def listed(
    delays: list[float], *, max_polls: int | None = None, repeat_last: bool = True
) -> Schedule:
    """Poll at once, then wait ``delays[i]`` after poll i (the last one repeating)."""

    def schedule(attempt: int, elapsed: float, rng: random.Random) -> float | None:
        if attempt == 0:
            return 0.0
        if max_polls is not None and attempt >= max_polls:
            return None
        if attempt - 1 < len(delays):
            return delays[attempt - 1]
        return delays[-1] if repeat_last else None

    return schedule


def exponential(first: float, factor: float, cap: float, *, full_jitter: bool = False) -> Schedule:
    """Poll at once, then first·factor^n capped; full jitter draws uniformly in [0, delay]."""

    def schedule(attempt: int, elapsed: float, rng: random.Random) -> float | None:
        if attempt == 0:
            return 0.0
        delay = min(cap, first * factor ** min(attempt - 1, 200))
        return rng.uniform(0, delay) if full_jitter else delay

    return schedule


def ocrflow_exponential(policy: PollPolicy) -> Schedule:
    """ocrflow's capped exponential PollPolicy (the fallback of the learned one)."""

    def schedule(attempt: int, elapsed: float, rng: random.Random) -> float | None:
        return (
            0.0
            if attempt == 0
            else policy.next_delay(attempt, elapsed_s=elapsed, rand=rng.random())
        )

    return schedule


BASELINES: dict[str, Schedule] = {
    "seed tutorial (1,2,4... x10)": listed([2.0**i for i in range(10)], max_polls=10),
    "fixed 1 s": listed([1.0]),
    "fixed 2 s": listed([2.0]),
    "fixed 5 s": listed([5.0]),
    "1 s x1.5 cap 20 s": exponential(1.0, 1.5, 20.0),
    "1 s x1.5 cap 20 s, full jitter": exponential(1.0, 1.5, 20.0, full_jitter=True),
    "1 s x2 cap 30 s": exponential(1.0, 2.0, 30.0),
    "1,1,1,2,4,8,16,32 s": listed([1, 1, 1, 2, 4, 8, 16, 32]),
    "ocrflow exponential (1 s x1.6 cap 30 s)": ocrflow_exponential(PollPolicy()),
}
LEARNED = "ocrflow learned (lag <= max(2 s, 0.38 median))"


@dataclass
class Outcome:
    """Figures of one policy on one workload."""

    calls_mean: float
    lag_p50_s: float
    lag_p95_s: float
    unfinished: int


def run_schedule(schedule: Schedule, jobs: list[Job], seed: int) -> Outcome:
    rng = random.Random(seed)  # noqa: S311 - simulation draws
    calls, lags, unfinished = [], [], 0
    for job in jobs:
        attempt, elapsed, done = 0, 0.0, False
        while True:
            delay = schedule(attempt, elapsed, rng)
            if delay is None or elapsed + delay > GIVE_UP_S:
                break
            elapsed += delay
            attempt += 1
            if job.start_age_s + elapsed >= job.duration_s:
                lags.append(
                    max(job.start_age_s + elapsed - job.duration_s, 0.0)
                    if job.start_age_s < job.duration_s
                    else 0.0
                )
                done = True
                break
        calls.append(attempt)
        unfinished += not done
    return _outcome(calls, lags, unfinished)


def run_learned(
    policy: AdaptivePollPolicy, jobs: list[Job], seed: int, measure_from: int = 0
) -> Outcome:
    """The learned policy: each job's completion, as seen by its polls, teaches the model.

    Jobs before ``measure_from`` only teach (a warm-up); the figures are of the rest.
    """
    rng = random.Random(seed)  # noqa: S311 - simulation draws
    model = DurationModel()
    calls: list[int] = []
    lags: list[float] = []
    unfinished = 0
    for number, job in enumerate(jobs):
        if number == measure_from:
            calls, lags, unfinished = [], [], 0
        key = job_class(job.image_bytes, job.regions)
        attempt, elapsed, last_not_ready, done = 0, 0.0, None, False
        while True:
            age = job.start_age_s + elapsed
            delay = policy.next_delay(
                attempt=attempt,
                age_s=age,
                elapsed_s=elapsed,
                median_s=model.median(key),
                observations=model.count(key),
                rand=rng.random(),
            )
            if delay is None:
                break
            elapsed += delay
            attempt += 1
            age = job.start_age_s + elapsed
            if age >= job.duration_s:
                lags.append(age - job.duration_s if job.start_age_s < job.duration_s else 0.0)
                estimate = observed_duration(last_not_ready, age)
                if estimate is not None:
                    model.observe(key, estimate)
                done = True
                break
            last_not_ready = age
        calls.append(attempt)
        unfinished += not done
    return _outcome(calls, lags, unfinished)


def _outcome(calls: list[int], lags: list[float], unfinished: int) -> Outcome:
    ordered = sorted(lags) or [math.nan]
    return Outcome(
        calls_mean=statistics.fmean(calls),
        lag_p50_s=ordered[len(ordered) // 2],
        lag_p95_s=ordered[min(int(len(ordered) * 0.95), len(ordered) - 1)],
        unfinished=unfinished,
    )


def workloads(n: int, seed: int) -> dict[str, list[Job]]:
    """The same draws for every policy."""
    rng = random.Random(seed)  # noqa: S311 - simulation draws

    def fast() -> Job:
        return Job(rng.lognormvariate(math.log(2.0), 0.75), 0.0, 150_000, 1)

    def slow() -> Job:
        return Job(rng.lognormvariate(math.log(20.0), 1.0), 0.0, 4_000_000, 12)

    return {
        "done": [
            Job(rng.lognormvariate(math.log(2.0), 0.75), 3600.0, 150_000, 1) for _ in range(n)
        ],
        "fast": [fast() for _ in range(n)],
        "slow": [slow() for _ in range(n)],
        "mixed": [fast() if rng.random() < 0.5 else slow() for _ in range(n)],
    }


ROW = "  {:<46} {:>9} {:>9} {:>9} {:>10}"
TARGETS = {"done": (1.0, None), "fast": (2.9, 2.0), "slow": (5.5, 8.0)}


def main() -> None:
    """Run every policy on every workload; print, save and plot the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    loads = workloads(args.jobs, args.seed)
    figures: dict[str, dict[str, Outcome]] = {}
    for name, jobs in loads.items():
        figures[name] = {label: run_schedule(s, jobs, args.seed) for label, s in BASELINES.items()}
        figures[name][LEARNED] = run_learned(AdaptivePollPolicy(), jobs, args.seed)
        target = TARGETS.get(name)
        note = (
            f" (target ≤ {target[0]} calls"
            + (f", p95 lag ≤ {target[1]} s)" if target and target[1] else ")")
            if target
            else ""
        )
        print(f"\n{name}: {len(jobs)} jobs{note}")
        print(ROW.format("policy", "calls/job", "lag p50 s", "lag p95 s", "unfinished"))
        for label, o in figures[name].items():
            lags = (f"{o.calls_mean:.2f}", f"{o.lag_p50_s:.2f}", f"{o.lag_p95_s:.2f}")
            print(ROW.format(label, *lags, o.unfinished))
    out = ROOT / "bench" / "results" / "polling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({w: {p: vars(o) for p, o in f.items()} for w, f in figures.items()}, indent=2)
    )
    plot(figures, ROOT / "docs" / "img" / "polling.png")
    print(f"\nfigures: {out.relative_to(ROOT)}; plot: docs/img/polling.png")


def plot(figures: dict[str, dict[str, Outcome]], path: Path) -> None:
    """Calls per job (x) against p95 lag (y), one panel per workload with lag, Pillow only."""
    panels = [w for w in figures if w != "done"]
    width, height, pad = 420, 360, 50
    image = Image.new("RGB", (width * len(panels), height + 140), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    labels = list(next(iter(figures.values())))
    palette = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ]
    for p, workload in enumerate(panels):
        x0 = p * width
        points = figures[workload]
        max_calls = max(o.calls_mean for o in points.values()) * 1.1
        max_lag = max(o.lag_p95_s for o in points.values() if not math.isnan(o.lag_p95_s)) * 1.1
        left, top, right, bottom = x0 + pad, 30, x0 + width - 15, height - 20
        draw.rectangle((left, top, right, bottom), outline="black")
        draw.text((left, 8), f"{workload}: calls/job (x) vs p95 lag s (y)", fill="black", font=font)
        draw.text((left, bottom + 3), "0", fill="black", font=font)
        draw.text((right - 40, bottom + 3), f"{max_calls:.1f}", fill="black", font=font)
        draw.text((x0 + 5, top), f"{max_lag:.0f}", fill="black", font=font)
        target = TARGETS.get(workload)
        if target and target[1]:
            tx = left + (right - left) * target[0] / max_calls
            ty = bottom - (bottom - top) * target[1] / max_lag
            draw.rectangle((left, ty, tx, bottom), outline=(0, 150, 0))
        for i, label in enumerate(labels):
            o = points[label]
            x = left + (right - left) * o.calls_mean / max_calls
            y = bottom - (bottom - top) * o.lag_p95_s / max_lag
            r = 7 if label == LEARNED else 4
            draw.ellipse((x - r, y - r, x + r, y + r), fill=palette[i % len(palette)])
    for i, label in enumerate(labels):
        y = height + 5 + 13 * i
        draw.ellipse((10, y + 2, 18, y + 10), fill=palette[i % len(palette)])
        draw.text((24, y), label, fill="black", font=font)
    draw.text(
        (width, height + 5), "green box: the target (calls, p95 lag)", fill=(0, 120, 0), font=font
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


if __name__ == "__main__":
    main()
