"""The polling policy (pure) and the polling loop (fake clock, no real sleeping)."""

from __future__ import annotations

import pytest

from ocrflow.errors import (
    JobFailedError,
    JobNotFoundError,
    JobNotReadyError,
    JobTimeoutError,
    RateLimitedError,
)
from ocrflow.models import OcrResponse, TaskStatus
from ocrflow.outcome import require_completed
from ocrflow.poller import wait_until_completed
from ocrflow.polling import PollPolicy
from tests.unit.fakes import FakeClock

JOB = "b7162f77-bf10-407d-86de-ee255e422ca7"


def answer(status: str, **extra: object) -> OcrResponse:
    return OcrResponse.model_validate({"taskStatus": status, **extra})


def test_delays_grow_exponentially_and_cap() -> None:
    policy = PollPolicy(first_delay_s=1.0, growth=2.0, max_delay_s=10.0)
    assert [policy.base_delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.base_delay(10**9) == 10.0


def test_jitter_stays_within_its_band() -> None:
    policy = PollPolicy(first_delay_s=10.0, max_delay_s=10.0, jitter=0.1)
    low = policy.next_delay(1, elapsed_s=0, rand=0.0)
    high = policy.next_delay(1, elapsed_s=0, rand=0.999999)
    assert low == pytest.approx(9.0)
    assert high == pytest.approx(11.0, abs=1e-4)
    assert policy.next_delay(1, elapsed_s=0, rand=0.5) == pytest.approx(10.0)


def test_retry_after_is_a_floor() -> None:
    policy = PollPolicy(first_delay_s=1.0)
    assert policy.next_delay(1, elapsed_s=0, retry_after_s=7.0) == 7.0
    assert policy.next_delay(1, elapsed_s=0, retry_after_s=0.1) == pytest.approx(1.0)


def test_last_delay_lands_on_the_deadline_then_stops() -> None:
    policy = PollPolicy(first_delay_s=5.0, max_delay_s=5.0, jitter=0.0, deadline_s=12.0)
    assert policy.next_delay(3, elapsed_s=10.0) == pytest.approx(2.0)
    assert policy.next_delay(4, elapsed_s=12.0) is None


def test_retry_delays_fit_inside_the_deadline() -> None:
    policy = PollPolicy(first_delay_s=1.0, growth=2.0, max_delay_s=8.0, deadline_s=40.0)
    delays = policy.retry_delays()
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert sum(delays) <= 40.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_delay_s": 0},
        {"first_delay_s": 5, "max_delay_s": 1},
        {"growth": 0.5},
        {"jitter": 1.0},
        {"deadline_s": 24 * 3600},
        {"deadline_s": 0},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        PollPolicy(**kwargs)


def test_require_completed_maps_every_status() -> None:
    done = answer("Completed")
    assert require_completed(done, JOB) is done
    for status in ("Pending", "Processing"):
        with pytest.raises(JobNotReadyError) as not_ready:
            require_completed(answer(status), JOB)
        assert not_ready.value.status == TaskStatus(status)
    with pytest.raises(JobFailedError, match="bad image") as failed:
        require_completed(answer("Error", error={"messages": ["bad image"]}), JOB)
    assert failed.value.messages == ["bad image"]
    with pytest.raises(JobFailedError, match="no message"):
        require_completed(answer("Error"), JOB)
    with pytest.raises(JobNotFoundError, match="does not exist"):
        require_completed(answer("NotExist"), JOB)


async def test_loop_polls_until_completed_with_growing_waits() -> None:
    clock = FakeClock()
    answers = iter(["Pending", "Processing", "Processing", "Completed"])

    async def fetch() -> OcrResponse:
        return answer(next(answers))

    policy = PollPolicy(first_delay_s=1.0, growth=2.0, jitter=0.0)
    result = await wait_until_completed(
        fetch, job_id=JOB, policy=policy, clock=clock, sleep=clock.sleep, rand=lambda: 0.5
    )
    assert result.task_status is TaskStatus.COMPLETED
    assert clock.sleeps == [1.0, 2.0, 4.0]


async def test_loop_stops_at_once_on_error_status() -> None:
    clock = FakeClock()
    calls = 0

    async def fetch() -> OcrResponse:
        nonlocal calls
        calls += 1
        return answer("Error", error={"messages": ["unsupported image"]})

    with pytest.raises(JobFailedError):
        await wait_until_completed(
            fetch, job_id=JOB, policy=PollPolicy(), clock=clock, sleep=clock.sleep
        )
    assert calls == 1
    assert clock.sleeps == []


async def test_loop_times_out_at_the_deadline_with_a_clear_reason() -> None:
    clock = FakeClock()

    async def fetch() -> OcrResponse:
        return answer("Pending")

    policy = PollPolicy(first_delay_s=1.0, max_delay_s=60.0, growth=2.0, deadline_s=300.0)
    with pytest.raises(JobTimeoutError, match="still unfinished") as caught:
        await wait_until_completed(fetch, job_id=JOB, policy=policy, clock=clock, sleep=clock.sleep)
    assert sum(clock.sleeps) == pytest.approx(300.0)
    assert caught.value.attempts == len(clock.sleeps) + 1
    assert caught.value.elapsed_s == pytest.approx(300.0)


async def test_loop_waits_out_an_escaped_rate_limit() -> None:
    clock = FakeClock()
    outcomes: list[OcrResponse | Exception] = [
        RateLimitedError("busy", status_code=429, retry_after_s=42.0),
        answer("Completed"),
    ]

    async def fetch() -> OcrResponse:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    await wait_until_completed(
        fetch, job_id=JOB, policy=PollPolicy(), clock=clock, sleep=clock.sleep
    )
    assert clock.sleeps == [42.0]


def test_prefect_schedule_stops_at_the_cap_and_keeps_the_retry_count() -> None:
    policy = PollPolicy(first_delay_s=1.0, growth=2.0, max_delay_s=8.0, deadline_s=100.0)
    retries, delays = policy.retry_schedule()
    assert delays == [1.0, 2.0, 4.0, 8.0]  # Prefect repeats the last entry
    assert retries == len(policy.retry_delays()) == 14
    assert 1 + 2 + 4 + 8 * (retries - 3) <= 100.0


def test_prefect_schedule_never_exceeds_fifty_entries() -> None:
    slow_growth = PollPolicy(first_delay_s=0.1, growth=1.01, max_delay_s=30.0, deadline_s=20_000.0)
    retries, delays = slow_growth.retry_schedule()
    assert len(delays) == 50
    assert retries > 50
