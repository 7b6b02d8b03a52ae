"""A polling policy that learns how long jobs take, so that it polls little and late rarely.

Fixed schedules are either wasteful on slow jobs or late on fast ones. This one keeps, per
class of job (image size and region count predict processing time), the recent processing
times seen on completed jobs, and from their median derives a lag budget: at most
``lag_floor_s`` late, or ``lag_share`` of the median for slow jobs. It then polls on the
multiples of that budget in the job's age, so a job already done when polling starts costs one
call (its first poll is immediate), and a running one is seen at most one budget after it
completes. Until a class has ``warmup`` observations, the capped exponential
:class:`~ocrflow.polling.PollPolicy` is used. Pure: no clock, no I/O.

The median counts the jobs still running as *censored* observations (a Kaplan-Meier estimate):
a job seen unfinished at 40 s says its time is more than 40 s. Without them, a run shorter than
its longest jobs learns only from the ones that finish first, reads the median low, and polls
the long ones too often (measured in docs/performance.md).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ocrflow.polling import PollPolicy


def job_class(image_bytes: int, region_count: int) -> str:
    """The class of a job for learning: orders of magnitude of image size and region count."""
    size = max(int(math.log2(max(image_bytes, 1) / 65536)) + 1, 0) if image_bytes else 0
    regions = 0 if region_count <= 1 else 1 if region_count <= 4 else 2 if region_count <= 16 else 3
    return f"s{min(size, 8)}r{regions}"


@dataclass
class DurationModel:
    """Recent processing times per job class (a bounded window, so it follows drift), and the
    jobs of each class still running (how long each has run at least)."""

    window: int = 200
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _running: dict[str, dict[str, float]] = field(default_factory=dict)
    _medians: dict[str, float | None] = field(default_factory=dict)  # cleared on every change

    def observe(self, key: str, duration_s: float, job_id: str | None = None) -> None:
        """Record one completed job's processing time (estimated from its polls)."""
        self._seen.setdefault(key, deque(maxlen=self.window)).append(max(duration_s, 0.0))
        if job_id is not None:
            self._running.get(key, {}).pop(job_id, None)
        self._medians.pop(key, None)

    def running(self, key: str, job_id: str, at_least_s: float) -> None:
        """A job of the class seen unfinished ``at_least_s`` after its submission."""
        jobs = self._running.setdefault(key, {})
        if at_least_s > jobs.get(job_id, -1.0):
            jobs[job_id] = at_least_s
            self._medians.pop(key, None)

    def stopped(self, key: str, job_id: str) -> None:
        """The job is no longer running, or no longer followed (it ended without a time)."""
        if self._running.get(key, {}).pop(job_id, None) is not None:
            self._medians.pop(key, None)

    def count(self, key: str) -> int:
        """How many completed jobs the class has (the running ones do not count)."""
        return len(self._seen.get(key, ()))

    def median(self, key: str) -> float | None:
        """The median processing time of the class (Kaplan-Meier, the running jobs censored),
        or None without a completed job."""
        if key not in self._medians:
            seen = self._seen.get(key)
            running = self._running.get(key, {})
            self._medians[key] = km_median(seen, running.values()) if seen else None
        return self._medians[key]


def km_median(completed: Iterable[float], censored: Iterable[float] = ()) -> float:
    """The Kaplan-Meier median of durations, some only known to be longer than a value.

    Without censored values it is the sample median (the middle two averaged). When more than
    half may still be running past every completion, the largest value known (a lower bound);
    exactly half, the middle of the last completion and that value.
    """
    events = Counter(completed)
    if not events:
        raise ValueError("a median needs at least one completed duration")
    leaving = Counter(censored)
    at_risk = sum(events.values()) + sum(leaving.values())
    survival = 1.0
    times = sorted(events.keys() | leaving.keys())
    for number, t in enumerate(times):
        died = events.get(t, 0)
        if died:
            survival *= 1.0 - died / at_risk
            if math.isclose(survival, 0.5, abs_tol=1e-12):  # between t and the next event
                later = [u for u in times[number + 1 :] if u in events] or times[-1:]
                return (t + later[0]) / 2 if number + 1 < len(times) else t
            if survival < 0.5:
                return t
        at_risk -= died + leaving.get(t, 0)
    return times[-1]


@dataclass(frozen=True)
class AdaptivePollPolicy:
    """When to poll a job next, from its age and its class's learned median time."""

    lag_floor_s: float = 2.0
    lag_share: float = 0.38
    warmup: int = 20
    fallback: PollPolicy = field(default_factory=PollPolicy)

    def lag_budget(self, median_s: float) -> float:
        """How late a completion may be seen, for jobs of this median time."""
        return max(self.lag_floor_s, self.lag_share * median_s)

    def next_delay(
        self,
        *,
        attempt: int,
        age_s: float,
        elapsed_s: float,
        median_s: float | None,
        observations: int,
        rand: float = 0.5,
    ) -> float | None:
        """Wait before poll ``attempt + 1`` (``attempt`` polls done so far; 0 = none yet).

        ``age_s`` is the time since the job was submitted, ``elapsed_s`` since polling began
        (the deadline counts from there). None once the fallback's deadline has passed.
        """
        if elapsed_s >= self.fallback.deadline_s:
            return None
        if median_s is None or observations < self.warmup:
            if attempt == 0:
                return 0.0
            return self.fallback.next_delay(attempt, elapsed_s=elapsed_s, rand=rand)
        budget = self.lag_budget(median_s)
        if attempt == 0 and age_s >= budget:
            return 0.0  # old enough to be done already: look at once
        return min(until_next_tick(age_s, budget), self.fallback.deadline_s - elapsed_s)


@dataclass(frozen=True, slots=True)
class FirstPoll:
    """When a job's first poll in a run is due, and how the later ones are placed.

    ``wait_s``: from now to the first poll. ``tick_s``: the class's lag budget once it is
    learned (later polls on its multiples in the job's age), or None (the capped exponential
    policy's retry schedule)."""

    wait_s: float
    tick_s: float | None


def plan_first_poll(
    policy: AdaptivePollPolicy,
    model: DurationModel,
    key: str | None,
    *,
    age_s: float,
    looked: bool,
    fallback_wait_s: float,
) -> FirstPoll:
    """The first poll of a job of class ``key`` (None: unknown, an id given by hand) aged
    ``age_s``. ``looked``: a first look found it not ready a moment ago, so the fallback waits
    ``fallback_wait_s`` (its schedule's first delay) and the learned policy its next tick."""
    median = model.median(key) if key is not None else None
    seen = model.count(key) if key is not None else 0
    if median is None or seen < policy.warmup:
        return FirstPoll(fallback_wait_s if looked else 0.0, None)
    tick_s = policy.lag_budget(median)
    if looked:  # the look was the first poll: the next one on the tick after it
        return FirstPoll(0.0, tick_s)
    wait_s = policy.next_delay(
        attempt=0, age_s=age_s, elapsed_s=0.0, median_s=median, observations=seen
    )
    return FirstPoll(wait_s or 0.0, tick_s)


def until_next_tick(age_s: float, tick_s: float) -> float:
    """From a job's age, the time to the next multiple of ``tick_s`` in its age (the learned
    policy polls on those ticks, so a slow poll does not push the later ones back)."""
    return (math.floor(age_s / tick_s + 1e-9) + 1) * tick_s - age_s


def estimate_from_polls(submitted_at: float, polls: list[tuple[float, bool]]) -> float | None:
    """A job's processing time from its polls (timestamps, done?) and its submission time."""
    done = [at for at, finished in polls if finished]
    if not done:
        return None
    waiting = [at for at, finished in polls if not finished and at < done[0]]
    last_not_ready = max(waiting) - submitted_at if waiting else None
    return observed_duration(last_not_ready, done[0] - submitted_at)


def observed_duration(
    last_not_ready_age_s: float | None, done_age_s: float, *, max_first_look_s: float = 120.0
) -> float | None:
    """Best estimate of a job's processing time from its polls: the middle of the interval
    between the last poll that saw it unfinished and the first that saw it done.

    A job done at its first poll only bounds the time from above: it counts (as half its age)
    when that poll came early, and not at all when it came late (an old job picked up by a
    sweep says nothing about processing times).
    """
    if last_not_ready_age_s is None:
        return done_age_s / 2 if done_age_s <= max_first_look_s else None
    return (last_not_ready_age_s + done_age_s) / 2
