"""The learned polling policy: pure decisions from a job's age and its class's median."""

from __future__ import annotations

import pytest

from ocrflow.adaptive import (
    AdaptivePollPolicy,
    DurationModel,
    FirstPoll,
    estimate_from_polls,
    job_class,
    observed_duration,
    plan_first_poll,
    until_next_tick,
)
from ocrflow.polling import PollPolicy

POLICY = AdaptivePollPolicy(
    lag_floor_s=2.0, lag_share=0.4, warmup=3, fallback=PollPolicy(jitter=0.0, deadline_s=100.0)
)


def test_lag_budget_has_a_floor_and_grows_with_the_median() -> None:
    assert POLICY.lag_budget(1.0) == 2.0
    assert POLICY.lag_budget(20.0) == 8.0


def test_warm_up_polls_at_once_then_follows_the_fallback() -> None:
    first = POLICY.next_delay(attempt=0, age_s=0, elapsed_s=0, median_s=5.0, observations=2)
    second = POLICY.next_delay(attempt=1, age_s=0, elapsed_s=0, median_s=5.0, observations=2)
    assert (first, second) == (0.0, 1.0)


def test_a_job_older_than_its_budget_is_polled_at_once() -> None:
    assert (
        POLICY.next_delay(attempt=0, age_s=3600, elapsed_s=0, median_s=2.0, observations=9) == 0.0
    )


def test_polls_land_on_multiples_of_the_budget_in_the_job_age() -> None:
    delays = [
        POLICY.next_delay(attempt=a, age_s=age, elapsed_s=age, median_s=20.0, observations=9)
        for a, age in [(0, 0.0), (1, 8.0), (2, 16.0), (0, 3.0)]
    ]
    assert delays == pytest.approx([8.0, 8.0, 8.0, 5.0])


def test_the_deadline_still_ends_polling() -> None:
    assert (
        POLICY.next_delay(attempt=5, age_s=100, elapsed_s=100, median_s=20, observations=9) is None
    )
    last = POLICY.next_delay(attempt=5, age_s=99, elapsed_s=99, median_s=20, observations=9)
    assert last == pytest.approx(1.0)


def test_model_keeps_a_bounded_window_per_class() -> None:
    model = DurationModel(window=3)
    for seconds in (100.0, 1.0, 2.0, 3.0):
        model.observe("a", seconds)
    assert (model.count("a"), model.median("a")) == (3, 2.0)
    assert model.median("b") is None


def test_job_classes_follow_size_and_region_count() -> None:
    assert job_class(100_000, 1) != job_class(4_000_000, 12)
    assert job_class(100_000, 1) == job_class(110_000, 1)


def test_observed_duration_is_the_middle_of_the_last_interval() -> None:
    assert observed_duration(8.0, 16.0) == 12.0
    assert observed_duration(None, 4.0) == 2.0
    assert observed_duration(None, 3600.0) is None  # an old job says nothing about timing


def test_estimate_from_polls_uses_the_last_unfinished_and_first_finished_poll() -> None:
    polls = [(100.5, False), (101.5, False), (103.5, True), (104.0, True)]
    assert estimate_from_polls(100.0, polls) == pytest.approx(2.5)
    assert estimate_from_polls(100.0, [(101.0, False)]) is None


def learned(median_s: float, count: int) -> DurationModel:
    model = DurationModel()
    for _ in range(count):
        model.observe("s1r1", median_s)
    return model


def test_the_first_poll_before_a_class_is_learned_is_now_or_after_the_looks_wait() -> None:
    cold = learned(20.0, 2)  # under the warm-up
    assert plan_first_poll(
        POLICY, cold, "s1r1", age_s=3.0, looked=False, fallback_wait_s=1.5
    ) == FirstPoll(0.0, None)
    assert plan_first_poll(
        POLICY, cold, "s1r1", age_s=3.0, looked=True, fallback_wait_s=1.5
    ) == FirstPoll(1.5, None)
    assert plan_first_poll(
        POLICY, learned(20.0, 9), None, age_s=3.0, looked=False, fallback_wait_s=1.5
    ) == FirstPoll(0.0, None)  # a job given by id: its class is unknown


def test_a_learned_class_polls_young_jobs_on_the_next_tick_and_old_ones_at_once() -> None:
    warm = learned(20.0, 5)  # budget 8 s
    young = plan_first_poll(POLICY, warm, "s1r1", age_s=3.0, looked=False, fallback_wait_s=1.5)
    assert young == FirstPoll(5.0, 8.0)
    old = plan_first_poll(POLICY, warm, "s1r1", age_s=30.0, looked=False, fallback_wait_s=1.5)
    assert old == FirstPoll(0.0, 8.0)
    after_look = plan_first_poll(POLICY, warm, "s1r1", age_s=3.0, looked=True, fallback_wait_s=1.5)
    assert after_look == FirstPoll(0.0, 8.0)  # the task waits for the tick after the look


def test_ticks_fall_on_multiples_of_the_budget_in_the_jobs_age() -> None:
    assert until_next_tick(3.0, 8.0) == pytest.approx(5.0)
    assert until_next_tick(8.0, 8.0) == pytest.approx(8.0)  # on a tick: the next one
    assert until_next_tick(17.5, 8.0) == pytest.approx(6.5)
