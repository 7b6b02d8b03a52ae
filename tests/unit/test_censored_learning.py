"""Learning from jobs still running: the Kaplan-Meier median and the runtime that feeds it."""

from __future__ import annotations

import statistics

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocrflow.adaptive import DurationModel, job_class, km_median
from ocrflow.client import OcrClient
from ocrflow.models import TaskStatus
from ocrflow.runtime import Runtime
from ocrflow.settings import OcrflowSettings
from tests.unit.fakes import ManualClock

durations = st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1)


@given(durations)
def test_without_censored_values_it_is_the_sample_median(completed: list[float]) -> None:
    assert km_median(completed) == pytest.approx(statistics.median(completed))


@given(durations, durations, st.floats(min_value=0.0, max_value=1e4, allow_nan=False))
def test_a_job_still_running_never_lowers_the_median(
    completed: list[float], censored: list[float], more: float
) -> None:
    assert km_median(completed, [*censored, more]) >= km_median(completed, censored) - 1e-9


def test_jobs_running_past_the_fast_ones_pull_the_median_up() -> None:
    completed = [2.0, 3.0, 4.0, 5.0]  # the first to finish of a batch of ten
    assert km_median(completed) == 3.5
    running = [30.0] * 6  # the other six, unfinished at 30 s
    assert km_median(completed, running) == 30.0  # more than half run past 5 s: a lower bound
    assert km_median(completed, [4.5] * 2) == 4.5  # two more, known only to pass 4.5 s


def test_a_median_needs_a_completed_job() -> None:
    with pytest.raises(ValueError, match="at least one completed"):
        km_median([], [3.0])


def test_the_model_counts_running_jobs_until_they_stop_or_complete() -> None:
    model = DurationModel()
    for seconds in (2.0, 3.0, 4.0, 5.0):
        model.observe("c", seconds)
    assert model.median("c") == 3.5
    for number in range(6):
        model.running("c", f"job-{number}", 10.0)
    model.running("c", "job-0", 6.0)  # an older poll's bound never lowers a later one's
    assert model.median("c") == 10.0
    assert model.count("c") == 4  # the warm-up counts completed jobs only
    for number in range(5):
        model.stopped("c", f"job-{number}")
    model.observe("c", 12.0, job_id="job-5")
    assert model.median("c") == 4.0  # 2, 3, 4, 5, 12: no one left running


def _runtime(clock: ManualClock) -> Runtime:
    settings = OcrflowSettings(base_url="http://127.0.0.1:9", client_id="id", client_secret="s")
    client = OcrClient(settings, transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    return Runtime(settings, client, None, clock=clock)


def test_the_runtime_turns_unfinished_polls_of_a_followed_job_into_bounds() -> None:
    clock = ManualClock()
    runtime = _runtime(clock)
    key = job_class(4_000_000, 12)
    for _ in range(3):
        runtime.model.observe(key, 4.0)
    submitted = clock.now().timestamp()
    clock.advance(2.0)
    runtime.note_poll("early", TaskStatus.PROCESSING)  # a first look, before it is followed
    runtime.follow("early", job_class(4_000_000, 12), submitted)
    runtime.follow("late", job_class(4_000_000, 12), submitted)
    clock.advance(48.0)
    runtime.note_poll("late", TaskStatus.PENDING)
    for job in ("a", "b"):
        runtime.follow(job, job_class(4_000_000, 12), submitted)
        runtime.note_poll(job, TaskStatus.PROCESSING)
    assert runtime.model.median(key) == 27.0  # three at 4 s, three running past 50 s, one 2 s
    runtime.note_poll("a", TaskStatus.COMPLETED)
    runtime.note_poll("b", TaskStatus.ERROR)
    runtime.unfollow("late")
    assert runtime.model.median(key) == 4.0
    assert runtime.polls["early"] == 1
    assert runtime.poll_log["a"][-1][1] is True
